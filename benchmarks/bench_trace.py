"""Where a training step's time goes, kernel by kernel: a profiler trace of the compiled
training chunk (the engine's program: sampling, forward, backward, optimiser, divergence
check) of each recipe's costliest quick-mode job (most steps × batch × parameters; one
seed), its kernels' times joined to the compiled HLO.

XLA:CPU records one trace event per executed thunk, named after its HLO instruction. Each
instruction's metadata says which part of the step it came from:

- **backward**: its ``op_name`` holds ``transpose(`` (the pullback of the loss);
- **optimiser**: a frame of its source stack is in optax;
- **sample**: its innermost frame is in ``iclab/tasks`` or it is inside a ``jax.random``
  sampler;
- **engine**: its innermost frame is in ``iclab/engine`` (divergence check, loss);
- **forward**: the rest (the model and the loss).

and what kind of kernel it is: **dot** (a fusion holding a dot or convolution, e.g.
XNNPACK's ``ynn_fusion``), **lapack** (a custom call), **reduce**, **gather/scatter**,
**copy** (copies and transposes), **loop** (while/conditional; their own time only),
**elementwise** (the other fusions). A fusion takes the phase of its root instruction, so
sampling fused into the forward pass counts as forward. Times are self times (a loop's
body kernels are not counted twice) summed over threads; they are printed per training
step and as shares of the kernels' total.

Usage: python benchmarks/bench_trace.py [RECIPE ...] [--chunks 3] [--top 5]
       [--mode quick|full] [--job TAG]
"""

import argparse
import collections
import dataclasses
import glob
import gzip
import json
import math
import re
import tempfile
import time

import jax

from _timing import costliest_job, machine_line, matmul_flops, one_seed_trainer

DEFAULT = ("icl-gd", "icl-gd-deep", "mesa", "function-classes", "versatile-lt",
           "induction-heads", "bursty-icl")
PHASES = ("sample", "forward", "backward", "optimiser", "engine", "?")
KINDS = ("dot", "lapack", "reduce", "sort", "gather/scatter", "copy", "elementwise", "loop")
CHUNK = 10  # steps per traced chunk

_INSTRUCTION = re.compile(r"^\s*(?:ROOT\s+)?%?([\w.\-]+)\s*=\s*(.*?)\s([a-z][\w\-]*)\(")
_RANDOM = re.compile(r"jit\(_(normal|uniform|randint|bernoulli|categorical|gumbel|choice|"
                     r"permutation|truncated_normal|gamma|beta|dirichlet|exponential|"
                     r"multivariate_normal)\b|random_(bits|split|fold_in|wrap)|threefry")
_COMPUTATION = re.compile(r"^(?:ENTRY\s+)?%?([\w.\-]+)\s.*\{\s*$")


@dataclasses.dataclass
class Instruction:
    opcode: str
    op_name: str
    frames: tuple[str, ...]  # source files, innermost first
    calls: tuple[str, ...]
    operands: tuple[str, ...]
    shape: tuple[int, ...] | None  # None for a tuple
    contracting: tuple[int, ...]  # a dot's lhs contracting dimensions


def flops(name: str, instructions: dict[str, Instruction],
          computations: dict[str, list[str]]) -> float:
    """2 × output size × contracted size, summed over the dots an instruction is or calls."""
    ins = instructions[name]
    if ins.opcode == "dot":
        lhs = instructions[ins.operands[0]].shape
        return 2.0 * math.prod(ins.shape) * math.prod(lhs[d] for d in ins.contracting)
    if ins.opcode == "fusion":
        return sum(flops(n, instructions, computations)
                   for c in ins.calls for n in computations.get(c, ()))
    return 0.0


def parse_hlo(text: str) -> tuple[dict[str, Instruction], dict[str, list[str]]]:
    """The compiled module's instructions by name, and each computation's instruction
    names (its ROOT last), the ENTRY computation first."""
    files, frames, locations = {}, {}, {}
    section = None
    instructions: dict[str, Instruction] = {}
    computations: dict[str, list[str]] = collections.defaultdict(list)
    current = None
    raw, roots, entry = [], {}, None
    for line in text.splitlines():
        head = line.strip()
        if head in ("FileNames", "FunctionNames", "FileLocations", "StackFrames"):
            section = head
            continue
        if section and head and head[0].isdigit():
            key, rest = head.split(" ", 1)
            if section == "FileNames":
                files[key] = rest.strip('"')
            elif section == "FileLocations":
                locations[key] = re.search(r"file_name_id=(\d+)", rest).group(1)
            elif section == "StackFrames":
                loc = re.search(r"file_location_id=(\d+)", rest).group(1)
                parent = re.search(r"parent_frame_id=(\d+)", rest)
                frames[key] = (loc, parent.group(1) if parent else None)
            continue
        section = None
        match = _COMPUTATION.match(line)
        if match and not line[0].isspace():  # headers start a line, instructions indent
            current = match.group(1)
            entry = current if line.startswith("ENTRY") else entry
            continue
        match = _INSTRUCTION.match(line)
        if match and current is not None:
            name, type_, opcode = match.groups()
            computations[current].append(name)
            if line.lstrip().startswith("ROOT"):
                roots[current] = name
            raw.append((name, opcode, line, type_))

    def stack(frame_id):
        out, seen = [], set()
        while frame_id and frame_id in frames and frame_id not in seen:
            seen.add(frame_id)
            loc, parent = frames[frame_id]
            out.append(files.get(locations.get(loc, ""), ""))
            frame_id = parent if parent != frame_id else None
        return tuple(out)

    for comp, root in roots.items():  # each computation's ROOT last
        computations[comp].remove(root)
        computations[comp].append(root)
    for name, opcode, line, type_ in raw:
        op_name = re.search(r'op_name="([^"]*)"', line)
        frame = re.search(r"stack_frame_id=(\d+)", line)
        calls = re.findall(r"(?:calls|body|condition|to_apply|branch_computations)="
                           r"\{?%?([\w.\-]+)", line)
        args = re.search(re.escape(opcode) + r"\(([^)]*)\)", line)
        shape = re.match(r"\w+\[([\d,]*)\]", type_)
        contracting = re.search(r"lhs_contracting_dims=\{([\d,]*)\}", line)
        instructions[name] = Instruction(
            opcode, op_name.group(1) if op_name else "",
            stack(frame.group(1)) if frame else (), tuple(calls),
            tuple(re.findall(r"%([\w.\-]+)", args.group(1))) if args else (),
            tuple(int(d) for d in shape.group(1).split(",") if d) if shape else None,
            tuple(int(d) for d in contracting.group(1).split(",") if d)
            if contracting else ())
    computations = {entry: computations[entry],
                    **{c: n for c, n in computations.items() if c != entry}}
    return instructions, computations


def phases(instructions: dict[str, Instruction], computations: dict[str, list[str]]
           ) -> dict[str, str]:
    """Each instruction's phase. XLA drops the metadata of some instructions (every batched
    dot, for one); such an instruction takes the phases of the labelled instructions it
    calls (a fusion's) or, failing those, of its inputs traced back through unlabelled
    instructions: backward if any is backward (a pullback consumes a cotangent), else
    forward, optimiser, sample, engine in that order (a dot of sampled data with the
    parameters is the model's: forward), else that of the loop or fusion whose body
    holds it (the copies of a loop's carried state), else, outside every loop, the
    engine's."""
    def inner(ins):
        found, todo, seen = [], list(ins.calls), set()
        while todo:
            c = todo.pop()
            if c in seen:
                continue
            seen.add(c)
            for m in (instructions[n] for n in computations.get(c, ())):
                if m.op_name or m.frames:
                    found.append(_phase(m))
                todo.extend(m.calls)
        return found

    out: dict[str, str] = {}

    def resolve(name, depth=0):
        if name in out:
            return out[name]
        ins = instructions.get(name)
        if ins is None:
            return "?"
        if ins.op_name or ins.frames:
            out[name] = _phase(ins)
            return out[name]
        found = inner(ins)
        if not found and depth < 64:
            found = [p for p in (resolve(o, depth + 1) for o in ins.operands) if p != "?"]
        result = next((p for p in ("backward", "forward", "optimiser", "sample", "engine")
                       if p in found), "?")
        if result in ("sample", "engine") and kind(ins, instructions, computations) == "dot":
            result = "forward"  # a product of the batch and the parameters: the model's
        if result == "?" and depth == 0 and owner.get(name) in caller:
            result = resolve(caller[owner[name]], 0)  # the phase of its loop
        elif result == "?" and depth == 0 and owner.get(name) == entry:
            result = "engine"  # the chunk's own set-up, outside the training loop
        if depth == 0 or found:
            out[name] = result
        return result

    owner = {n: c for c, names in computations.items() for n in names}
    caller = {c: n for n, ins in instructions.items() for c in ins.calls}
    entry = next(iter(computations))
    for name in instructions:
        resolve(name)
    return out


def _phase(ins: Instruction) -> str:
    if "transpose(" in ins.op_name:
        return "backward"
    if any("optax" in f for f in ins.frames):
        return "optimiser"
    inner = ins.frames[0] if ins.frames else ""
    if "iclab/tasks" in inner or _RANDOM.search(ins.op_name):
        return "sample"
    if "iclab/engine" in inner:
        return "engine"
    return "forward"


_MOVES = {"parameter", "constant", "copy", "transpose", "bitcast", "broadcast", "reshape",
          "slice", "concatenate", "pad", "dynamic-slice", "tuple", "get-tuple-element", "iota"}


def kind(ins: Instruction, instructions: dict[str, Instruction],
         computations: dict[str, list[str]]) -> str:
    """dot if it is or holds a dot; otherwise by what the kernel ends in (its root)."""
    if ins.opcode in ("while", "conditional", "call"):
        return "loop"
    inside, roots = set(), []
    todo, seen = list(ins.calls), set()
    while todo:  # the opcodes of the called computations, nested ones included
        c = todo.pop()
        if c not in seen:
            seen.add(c)
            names = computations.get(c, ())
            if names:
                roots.append(instructions[names[-1]].opcode)
            for n in names:
                inside.add(instructions[n].opcode)
                todo.extend(instructions[n].calls)
    ops = inside | {ins.opcode}
    root = set(roots[:1]) if ins.opcode == "fusion" else {ins.opcode}
    if ops & {"dot", "convolution"}:
        return "dot"
    if "custom-call" in ops:
        return "lapack"
    if root & {"reduce", "reduce-window"}:
        return "reduce"
    if "sort" in ops:
        return "sort"
    if root & {"gather", "scatter", "dynamic-update-slice"}:
        return "gather/scatter"
    if ops <= _MOVES | {"fusion"}:
        return "copy"
    return "elementwise"


def self_times(events: list[dict]) -> tuple[dict[str, float], dict[str, int]]:
    """Microseconds of self time (its duration minus that of the events nested in it on
    the same thread) and number of executions, per HLO instruction, over all threads."""
    out: dict[str, float] = collections.defaultdict(float)
    count: dict[str, int] = collections.Counter()
    by_thread = collections.defaultdict(list)
    for e in events:
        by_thread[e["tid"]].append(e)
        count[e["args"]["hlo_op"]] += 1
    for evs in by_thread.values():
        evs.sort(key=lambda e: (e["ts"], -e["dur"]))
        open_: list[list] = []  # [end, name, time of the nested events, duration]

        def close(open_=open_):
            _, name, nested, dur = open_.pop()
            out[name] += dur - nested
            if open_:
                open_[-1][2] += dur

        for e in evs:
            while open_ and e["ts"] >= open_[-1][0]:
                close()
            open_.append([e["ts"] + e["dur"], e["args"]["hlo_op"], 0.0, e["dur"]])
        while open_:
            close()
    return dict(out), dict(count)


def trace_job(job, chunks: int):
    """(seconds per step, {instruction: µs per step}, {instruction: executions per step},
    instructions, computations)."""
    trainer = one_seed_trainer(job, eval_every=CHUNK)
    state = trainer.init()
    data = trainer.member_data()
    with trainer.precision():
        compiled = trainer._chunk.lower(state, CHUNK, data).compile()
    instructions, computations = parse_hlo(compiled.as_text())
    module = compiled.as_text().split(",", 1)[0].split()[-1]
    fresh = [trainer.init() for _ in range(chunks + 1)]  # the chunk donates its state
    with trainer.precision():
        jax.block_until_ready(compiled(fresh[0], data)[0].params)
        with tempfile.TemporaryDirectory() as log_dir:
            with jax.profiler.trace(log_dir, create_perfetto_trace=True):
                start = time.perf_counter()
                for s in fresh[1:]:
                    jax.block_until_ready(compiled(s, data)[0].params)
                wall = time.perf_counter() - start
            (path,) = glob.glob(f"{log_dir}/**/*.trace.json.gz", recursive=True)
            with gzip.open(path) as f:
                events = json.load(f)["traceEvents"]
    events = [e for e in events if e.get("ph") == "X" and e.get("dur")
              and e.get("args", {}).get("hlo_module") == module
              and e["args"].get("hlo_op") in instructions]
    steps = chunks * CHUNK
    times, counts = self_times(events)
    return (wall / steps, {k: v / steps for k, v in times.items()},
            {k: v / steps for k, v in counts.items()}, instructions, computations)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("recipes", nargs="*", default=list(DEFAULT))
    parser.add_argument("--chunks", type=int, default=3)
    parser.add_argument("--top", type=int, default=5)
    parser.add_argument("--mode", choices=("quick", "full"), default="quick",
                        help="the recipe's mode whose job is traced")
    parser.add_argument("--job", default=None,
                        help="trace the job with this tag instead of the costliest")
    args = parser.parse_args()
    print(machine_line())
    peak = matmul_flops()
    print(f"float32 matmul peak (1024³): {peak / 1e9:.1f} GFLOP/s")
    for name in args.recipes:
        job = costliest_job(name, args.mode, args.job)
        if job is None:
            print(f"\n{name}: trains nothing")
            continue
        step, times, counts, instructions, computations = trace_job(job, args.chunks)
        total = sum(times.values())
        phase = phases(instructions, computations)
        kinds_of = {op: kind(instructions[op], instructions, computations) for op in times}
        table = collections.defaultdict(float)
        for op, t in times.items():
            table[phase[op], kinds_of[op]] += t
        print(f"\n{name} ({args.mode}) / {job.tag or 'model'} (batch {job.train.batch_size}): "
              f"{1e3 * step:.2f} ms per step wall, kernels {total / 1e3:.2f} ms "
              f"(summed over threads)")
        kinds = [k for k in KINDS if any(table[p, k] for p in PHASES)]
        print(f"{'':>10}" + "".join(f"{k:>15}" for k in kinds) + f"{'all':>8}")
        for p in PHASES:
            row = [table[p, k] for k in kinds]
            if sum(row):
                print(f"{p:>10}" + "".join(f"{100 * t / total:14.1f}%" for t in row)
                      + f"{100 * sum(row) / total:7.1f}%")
        print(f"{'all':>10}" + "".join(
            f"{100 * sum(table[p, k] for p in PHASES) / total:14.1f}%" for k in kinds))
        dots = [op for op in times if kinds_of[op] == "dot"]
        dot_flops = sum(counts[op] * flops(op, instructions, computations) for op in dots)
        dot_time = 1e-6 * sum(times[op] for op in dots)
        if dot_flops:
            print(f"  dots: {dot_flops / 1e6:.1f} MFLOP per step (every loop iteration "
                  f"counted); in their own time {dot_flops / dot_time / 1e9:.1f} GFLOP/s "
                  f"({100 * dot_flops / dot_time / peak:.1f} % of the peak); over the "
                  f"step's wall time {dot_flops / step / 1e9:.1f} GFLOP/s "
                  f"({100 * dot_flops / step / peak:.1f} %)")
        print(f"  top {args.top} kernels (µs per step, share, phase, kind, op):")
        for op, t in sorted(times.items(), key=lambda kv: -kv[1])[:args.top]:
            ins = instructions[op]
            where = "/".join(ins.op_name.rsplit("/", 2)[-2:]) or ins.opcode
            source = ins.frames[0].rsplit("/", 1)[-1] if ins.frames else "?"
            print(f"    {t:9.1f} {100 * t / total:5.1f}%  {phase[op]:>9} "
                  f"{kinds_of[op]:>14}  {op} ({source}): {where}")


if __name__ == "__main__":
    main()
