# TEMPORARY stand-in until the checks package lands
from .base import CheckInput, Verdict, ToolCall, normalize
class CheckCodeError(Exception): pass
REGISTRY = {}
def validate_spec(spec): return []
async def run_check(spec, inp):
    t = spec["type"]; out = inp.output if isinstance(inp.output, str) else inp.text
    n = spec.get("normalize")
    if t == "equals":
        return Verdict(normalize(out, n) == normalize(str(spec["value"]), n), f'expected "{spec["value"]}", got "{out[:60]}"')
    if t == "contains":
        return Verdict(str(spec["value"]) in out, f'output does not contain "{spec["value"]}"')
    if t == "one-of":
        return Verdict(normalize(out, n) in [normalize(str(v), n) for v in spec["value"]], "not one of")
    return Verdict(True)
