#!/usr/bin/env python3
"""What the sm_90 machine code of every .cu costs, read without a GPU (`make cuda-report`).

From the objects of `make cuda-check` (build/cuda-check), with cuobjdump:
  * per kernel: registers, static shared memory, stack frame, local-memory instructions (LDL/STL) and the blocks
    an H200 SM holds (registers, shared memory, threads, the 32-block cap);
  * for the hot loops of the loss kernels and the samplers: SASS instructions per element on the loop's hot path,
    and the fraction of the H200's HBM bandwidth that issue rate allows (the model below).

The hot loop is the loop (a backward branch and the code between its target and it) with the widest global
accesses, the largest of those. Its hot path runs from the loop's head to that branch through the blocks that are
not cold: a block is cold when it calls a subroutine (CALL: the division's and the math library's slow paths), is
the divergent fallback of a warp collective (BRA.DIV), reads or writes global memory only narrower than the loop's
widest access of the same kind (the unaligned and ragged-tail paths next to the 16-byte ones; a block holding both
widths is a vector/scalar choice made by predication, which issues both), lies in an inner loop that was not
unrolled (the math library's argument reduction of huge angles), or is reached from cold blocks only; a block that
every trip passes is never cold. Of those paths, the hot one moves the most bytes through the loop's widest
accesses of the kind that carries its elements (a full trip: a path that skips the loads of a chunk with fewer
packs is shorter but never runs), and of those it is the longest, so it counts the optional work too (per-element
losses for reduction='none', a per-element upstream gradient): the counts are upper bounds for the common reduced
case.

The elements one iteration of a hot loop handles are read from the source (PER_ITERATION below, with where each
number comes from); the bytes the hot path loads or stores give the number of iterations one trip of the machine
code holds (nvcc unrolls some grid-stride loops), and say so when the kernel no longer matches the table.
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# ---- the H200 (sm_90) model: stated assumptions, not measurements ----
H200 = {
    "sms": 132,
    "issue_per_sm_per_clk": 4,        # 4 sub-partitions, one warp instruction each per clock
    "lanes": 32,
    "clock_hz": 1.98e9,               # boost clock (nvidia-smi read 1980 MHz under load on the lent machine)
    "hbm_bytes_per_s": 4.8e12,        # HBM3e, the datasheet's figure (a device copy measured ~4.3e12 there)
    "regs_per_sm": 65536,
    "reg_alloc_unit": 256,            # registers are allocated per warp in units of 256
    "smem_per_sm": 233472,            # 228 KiB
    # cuobjdump's SHARED already holds the 1 KiB the runtime reserves per block on sm_80 and later (ptxas -v
    # reports 33536 bytes where cuobjdump says 34560)
    "smem_alloc_unit": 128,
    "threads_per_sm": 2048,
    "blocks_per_sm": 32,
}
LANE_INSTRUCTIONS_PER_S = H200["sms"] * H200["issue_per_sm_per_clk"] * H200["lanes"] * H200["clock_hz"]

TARGETS = {"loss_forward_kernel": 25.0, "loss_backward_kernel": 15.0}  # SASS instructions per element, at most

DTYPE_BYTES = {"float": 4, "double": 8, "c10::Half": 2, "c10::BFloat16": 2, "long": 8}


def loss_pack(dtype_bytes: int) -> int:
    # kPack<S> in csrc/losses/losses_kernels.cuh: 16 bytes of float32/float64, 2 elements of a 16-bit type
    return 2 if dtype_bytes == 2 else 16 // dtype_bytes


def loss_packs(dtype_bytes: int, paired: bool) -> int:
    # kMaxPacks<S, kPaired> in csrc/losses/losses_kernels.cuh
    return 8 if dtype_bytes >= 4 and not paired else 4


# Elements (logits, samples, words) one iteration of each hot loop's source handles per thread, and the global
# accesses that carry them (every iteration loads, or stores, each of its elements once). A paired loss reads two
# logits (a and b) per pair: both count.
#   loss_forward_kernel: one chunk, kMaxPacks<S, paired> packs of kPack<S> loaded per tensor (8 for one tensor of
#   32- or 64-bit values, else 4)
#   loss_backward_kernel: one pack of kPack<S> per tensor, its gradient stored
#   fill_kernel, words_kernel: one Philox block (4 words -> 4 elements) stored
# nvcc may unroll a grid-stride loop, so a trip of the machine code can hold several iterations: the unroll factor
# is the hot path's bytes of that kind over one iteration's, which also checks the table against the kernel.
PER_ITERATION = {
    "loss_forward_kernel": ("LDG", lambda b, paired: loss_packs(b, paired) * loss_pack(b) * (2 if paired else 1)),
    "loss_backward_kernel": ("STG", lambda b, paired: loss_pack(b) * (2 if paired else 1)),
    "fill_kernel": ("STG", lambda b, paired: 4),
    "words_kernel": ("STG", lambda b, paired: 4),
}


def elements_per_trip(family: str, dtype_bytes: int, paired: bool, hot_bytes: dict[str, int]) -> tuple[int, str]:
    """(elements one trip of the hot path handles, 'ok' or what does not add up)."""
    kind, elements_of = PER_ITERATION[family]
    elements = elements_of(dtype_bytes, paired)
    unroll, rest = divmod(hot_bytes[kind], elements * dtype_bytes)
    if unroll >= 1 and rest == 0:
        return unroll * elements, "ok"
    return elements, (f"the hot path's {kind} bytes ({hot_bytes[kind]}) are not a multiple of one iteration's "
                      f"{elements} elements: update PER_ITERATION")


def bytes_per_element(family: str, dtype_bytes: int) -> int:
    """Device-memory bytes per element of the common case: reduced losses, a scalar upstream gradient."""
    if family == "loss_forward_kernel":
        return dtype_bytes  # each logit read once; the reduced loss and statistics are a few bytes per launch
    if family == "loss_backward_kernel":
        return 2 * dtype_bytes  # the logit read, its gradient written
    if family == "words_kernel":
        return 8  # int64 words written
    return dtype_bytes  # fill_kernel: the sample written


# ---- tools ----
def find_tool(name: str, given: str | None) -> str:
    """A CUDA binary tool: the given path, PATH, the toolkit's bin, or the pip wheel (nvidia-cuda-cuobjdump,
    nvidia-cuda-nvdisasm: the build machines' toolkit has nvcc and ptxas but no disassembler)."""
    if given:
        return given
    found = shutil.which(name)
    if found:
        return found
    candidates = [os.path.join(os.environ.get("CUDA_HOME", "/usr/local/cuda"), "bin", name)]
    try:
        import nvidia  # namespace package of NVIDIA's wheels

        for base in nvidia.__path__:
            candidates += glob.glob(os.path.join(base, "cu*", "bin", name))
    except ImportError:
        pass
    for candidate in candidates:
        if os.access(candidate, os.X_OK):
            return candidate
    raise FileNotFoundError(f"{name} not found (PATH, $CUDA_HOME/bin, or pip install nvidia-cuda-{name})")


def run_tool(args: list[str], env: dict | None = None) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True, env=env).stdout


def demangle(names: list[str]) -> dict[str, str]:
    cxxfilt = shutil.which("c++filt")
    if not cxxfilt or not names:
        return {n: n for n in names}
    out = subprocess.run([cxxfilt], input="\n".join(names), capture_output=True, text=True, check=True).stdout
    return dict(zip(names, out.splitlines()))


# ---- parsing cuobjdump's output ----
RESOURCE_RE = re.compile(r"^\s*Function (\S+):\s*\n\s*REG:(\d+) STACK:(\d+) SHARED:(\d+) LOCAL:(\d+)", re.M)


def parse_resource_usage(text: str) -> dict[str, dict]:
    return {m[1]: {"registers": int(m[2]), "stack": int(m[3]), "shared": int(m[4]), "local": int(m[5])}
            for m in RESOURCE_RE.finditer(text)}


def parse_max_threads(elf_text: str) -> dict[str, int]:
    """EIATTR_MAX_THREADS (the __launch_bounds__ block size) per kernel, from `cuobjdump -elf`."""
    threads, current = {}, None
    for line in elf_text.splitlines():
        if line.startswith(".nv.info."):
            current = line[len(".nv.info."):].strip()
        elif current and line.strip().startswith("Value:") and "max_threads_pending" in threads:
            threads.pop("max_threads_pending")
            threads[current] = int(line.split()[1], 16)
        elif current and "EIATTR_MAX_THREADS" in line:
            threads["max_threads_pending"] = 1
    threads.pop("max_threads_pending", None)
    return threads


INSTR_RE = re.compile(r"^\s*/\*([0-9a-f]{4,})\*/\s+(.*?)\s*;")
FUNCTION_RE = re.compile(r"^\s*Function\s*:\s*(\S+)")


@dataclasses.dataclass
class Instr:
    addr: int
    text: str
    pred: str | None
    opcode: str  # with modifiers, e.g. LDG.E.128.CONSTANT
    operands: str

    @property
    def op(self) -> str:
        return self.opcode.split(".")[0]


def parse_instr(addr: int, text: str) -> Instr:
    pred = None
    if text.startswith("@"):
        pred, text = text.split(None, 1)
    opcode, _, operands = text.partition(" ")
    return Instr(addr, text, pred, opcode, operands.strip())


def parse_sass(text: str) -> dict[str, list[Instr]]:
    """Instructions per function from `cuobjdump --dump-sass`."""
    functions: dict[str, list[Instr]] = {}
    current = None
    for line in text.splitlines():
        m = FUNCTION_RE.match(line)
        if m:
            current = functions.setdefault(m[1], [])
            continue
        m = INSTR_RE.match(line)
        if m and current is not None:
            current.append(parse_instr(int(m[1], 16), m[2]))
    return functions


# ---- control flow ----
def branch_target(ins: Instr) -> int | None:
    if ins.op != "BRA":
        return None
    m = re.search(r"0x([0-9a-f]+)\s*$", ins.operands)
    return int(m[1], 16) if m else None


def unconditional(ins: Instr) -> bool:
    return ins.pred in (None, "@PT")


def ends_block(ins: Instr) -> bool:
    return ins.op in ("BRA", "BRX", "JMP", "JMX", "EXIT", "RET")


def global_width(ins: Instr) -> tuple[str, int] | None:
    """('LDG' | 'STG', bytes) for a global load or store."""
    if ins.op not in ("LDG", "STG"):
        return None
    mods = ins.opcode.split(".")[1:]
    width = 4
    for mod, size in (("128", 16), ("64", 8), ("U16", 2), ("S16", 2), ("U8", 1), ("S8", 1)):
        if mod in mods:
            width = size
    return ins.op, width


def loops(instrs: list[Instr]) -> list[tuple[int, int]]:
    """(head address, latch address) of every backward branch (a branch to itself, the end-of-code trap, is not a
    loop)."""
    out = []
    for ins in instrs:
        target = branch_target(ins)
        if target is not None and target < ins.addr:
            out.append((target, ins.addr))
    return out


@dataclasses.dataclass
class LoopPath:
    head: int
    latch: int
    static_instructions: int
    hot_instructions: int
    hot_blocks: list[tuple[int, int]]  # (first, last) address of each block on the hot path
    hot_local: int                     # LDL/STL on the hot path
    loop_local: int                    # LDL/STL anywhere in the loop
    hot_bytes: dict[str, int]          # LDG/STG bytes on the hot path
    cold_calls: int                    # CALLs in the loop (slow paths)


def hot_path(instrs: list[Instr], head: int, latch: int, element_kind: str = "LDG") -> LoopPath:
    """The loop's hot path: of the paths through blocks that are not cold, those that move the most bytes through
    the widest accesses of element_kind (LDG where a trip reads its elements, STG where it writes them), the
    longest."""
    body = [i for i in instrs if head <= i.addr <= latch]
    addrs = {i.addr for i in body}
    leaders = {head}
    for k, ins in enumerate(body):
        target = branch_target(ins)
        if target is not None and target in addrs:
            leaders.add(target)
        if ends_block(ins) and k + 1 < len(body):
            leaders.add(body[k + 1].addr)
    blocks: list[list[Instr]] = []
    for ins in body:
        if ins.addr in leaders or not blocks:
            blocks.append([])
        blocks[-1].append(ins)
    index = {b[0].addr: n for n, b in enumerate(blocks)}
    succ: list[list[int]] = [[] for _ in blocks]
    div_targets = set()
    for n, block in enumerate(blocks):
        last = block[-1]
        target = branch_target(last)
        for ins in block:
            if ins.opcode.startswith("BRA.DIV"):
                t = branch_target(ins)
                if t is not None:
                    div_targets.add(t)
        if target is not None and target in index and target > last.addr:
            succ[n].append(index[target])
        falls_through = not (ends_block(last) and unconditional(last))
        if falls_through and n + 1 < len(blocks):
            succ[n].append(n + 1)
    widest: dict[str, int] = {}
    for ins in body:
        gw = global_width(ins)
        if gw:
            widest[gw[0]] = max(widest.get(gw[0], 0), gw[1])
    inner = [(t, a) for t, a in loops(body) if a != latch]
    cold = []
    for block in blocks:
        # Narrow accesses with no wide one beside them: a block holding both is the vector/scalar choice
        # if-converted into predicated instructions, which the hot path issues either way.
        widths = [gw for i in block if (gw := global_width(i))]
        narrow = any(w < widest[k] for k, w in widths) and not any(w == widest[k] for k, w in widths)
        in_inner = any(t <= block[0].addr <= a for t, a in inner)
        cold.append(narrow or in_inner or block[0].addr in div_targets or any(i.op == "CALL" for i in block))
    cold[0] = False

    def reaches_latch(without: int) -> bool:
        seen, todo = {0}, [0]
        while todo:
            for t in succ[todo.pop()]:
                if t != without and t not in seen:
                    seen.add(t)
                    todo.append(t)
        return len(blocks) - 1 in seen

    # A block that every trip passes is hot whatever it holds (e.g. thread 0's narrow store of the chunk's sums,
    # predicated inside the path): only alternatives can be cold.
    for n in range(1, len(blocks)):
        if cold[n] and not reaches_latch(without=n):
            cold[n] = False
    preds: list[list[int]] = [[] for _ in blocks]
    for n, targets in enumerate(succ):
        for t in targets:
            preds[t].append(n)
    changed = True
    while changed:  # reached from cold blocks only: cold too
        changed = False
        for n in range(1, len(blocks)):
            if not cold[n] and preds[n] and all(cold[p] for p in preds[n]):
                cold[n] = changed = True

    # Bytes first: a path can avoid every cold block by skipping the loads (a chunk of fewer packs than the
    # unrolled maximum), and the longest such path would run the ragged tail's compute on loads it never made.
    def wide_bytes(block: list[Instr]) -> int:
        return sum(gw[1] for i in block if (gw := global_width(i)) and gw[0] == element_kind
                   and gw[1] == widest[gw[0]])

    weights = [(wide_bytes(b), len(b)) for b in blocks]

    def heaviest(allow_cold: bool) -> list[int] | None:
        best: list[tuple[tuple, list[int]] | None] = [None] * len(blocks)
        best[0] = (weights[0], [0])
        for n in range(len(blocks)):  # forward edges only: address order is a topological order
            if best[n] is None:
                continue
            for t in succ[n]:
                if cold[t] and not allow_cold:
                    continue
                weight = tuple(x + y for x, y in zip(best[n][0], weights[t]))
                if best[t] is None or weight > best[t][0]:
                    best[t] = (weight, best[n][1] + [t])
        end = best[len(blocks) - 1]
        return end[1] if end else None

    path = heaviest(False) or heaviest(True) or list(range(len(blocks)))
    on_path = [i for n in path for i in blocks[n]]
    hot_bytes: dict[str, int] = {"LDG": 0, "STG": 0}  # at the widest width: one per pack, not its scalar twin
    for ins in on_path:
        gw = global_width(ins)
        if gw and gw[1] == widest[gw[0]]:
            hot_bytes[gw[0]] += gw[1]
    return LoopPath(
        head=head, latch=latch, static_instructions=len(body), hot_instructions=len(on_path),
        hot_blocks=[(blocks[n][0].addr, blocks[n][-1].addr) for n in path],
        hot_local=sum(i.op in ("LDL", "STL") for i in on_path),
        loop_local=sum(i.op in ("LDL", "STL") for i in body), hot_bytes=hot_bytes,
        cold_calls=sum(i.op == "CALL" for i in body))


def hot_loop(instrs: list[Instr], element_kind: str = "LDG") -> LoopPath | None:
    """The loop with the widest global accesses, the largest of those: the element loop's 16-byte loads and stores
    rather than the last block's loop over the grid's partial sums (STRONG loads: they must see other blocks'
    stores, so they are not the element traffic), or a ragged-tail loop."""
    best = None
    for head, latch in loops(instrs):
        body = [i for i in instrs if head <= i.addr <= latch]
        widths = [gw[1] for i in body if (gw := global_width(i)) and ".STRONG" not in i.opcode]
        if not widths:
            continue
        score = (max(widths), len(body))
        if best is None or score > best[2]:
            best = (head, latch, score)
    return hot_path(instrs, best[0], best[1], element_kind) if best else None


# ---- occupancy and the bandwidth model ----
def blocks_per_sm(registers: int, shared: int, threads: int) -> dict:
    h = H200
    warps = math.ceil(threads / h["lanes"])
    regs_per_warp = math.ceil(max(registers, 1) * h["lanes"] / h["reg_alloc_unit"]) * h["reg_alloc_unit"]
    by_regs = (h["regs_per_sm"] // regs_per_warp) // warps
    smem = math.ceil(shared / h["smem_alloc_unit"]) * h["smem_alloc_unit"]
    by_smem = h["smem_per_sm"] // smem if shared > 0 else h["blocks_per_sm"]
    by_threads = h["threads_per_sm"] // threads
    limits = {"registers": by_regs, "shared": by_smem, "threads": by_threads, "cap": h["blocks_per_sm"]}
    blocks = min(limits.values())
    return {"blocks": blocks, "limited_by": min(limits, key=limits.get), "limits": limits,
            "occupancy": blocks * threads / h["threads_per_sm"]}


# The issue's bandwidth target for a whole training step's loss: forward and backward of the float32 BCE on logits
# (real and fake halves, reduced: the forward is its log-sum kernel), each kernel taking the longer of its issue
# time and its memory time.
STEP_TARGET = {"kernels": ("loss_forward_kernel", "loss_backward_kernel"), "termkind": "BceLogits",
               "dtype": "float", "paired": False, "fraction": 0.8}


def step_kernel(k: dict, family: str, paired: bool = STEP_TARGET["paired"]) -> bool:
    """k is the kernel that a reduced float32 BCE-with-logits loss launches for family."""
    return (k["family"] == family and k.get("termkind") == STEP_TARGET["termkind"]
            and k.get("dtype") == STEP_TARGET["dtype"] and k.get("paired") == paired
            and k.get("log_sum", False) == (family == "loss_forward_kernel"))


def step_fraction(kernels: list[dict]) -> dict | None:
    """Memory time of the step's bytes over the time its kernels take in the model (both per element)."""
    rows = [next((k for k in kernels if k.get("hot_loop") and step_kernel(k, family)), None)
            for family in STEP_TARGET["kernels"]]
    if None in rows:
        return None
    memory = sum(k["hot_loop"]["bytes_per_element"] for k in rows) / H200["hbm_bytes_per_s"]
    taken = sum(max(k["hot_loop"]["bytes_per_element"] / H200["hbm_bytes_per_s"],
                    k["hot_loop"]["instr_per_element"] / LANE_INSTRUCTIONS_PER_S) for k in rows)
    return {"instr_per_element": [k["hot_loop"]["instr_per_element"] for k in rows],
            "fraction": memory / taken, "target": STEP_TARGET["fraction"]}


def implied_fraction(instr_per_element: float, bytes_per_elem: int) -> dict:
    issue = LANE_INSTRUCTIONS_PER_S / instr_per_element
    bandwidth = H200["hbm_bytes_per_s"] / bytes_per_elem
    return {"issue_elements_per_s": issue, "bandwidth_elements_per_s": bandwidth,
            "fraction": min(1.0, issue / bandwidth)}


# ---- names ----
KERNEL_RE = re.compile(r"::(\w+_kernel)(?:<(.*)>)?\(")


def enum_names(macro: str, path: Path) -> list[str]:
    """The enumerators of a FASTGAN_DEFINE_ENUM list macro, in order (the templates print them as numbers)."""
    text = path.read_text()
    start = text.index(f"#define {macro}(X)")
    end = text.index("FASTGAN_DEFINE_ENUM", start)
    return re.findall(r"X\((\w+),", text[start:end])


def describe(demangled: str, enums: dict[str, list[str]]) -> dict:
    m = KERNEL_RE.search(demangled)
    if not m:
        return {"family": None}
    family, args = m[1], [a.strip() for a in (m[2] or "").split(",") if a.strip()]
    info: dict = {"family": family, "template_args": args}
    for a in args:
        e = re.fullmatch(r"\([\w:]*::(\w+)\)(\d+)", a)
        if e and e[1] in enums:
            info[e[1].lower()] = enums[e[1]][int(e[2])]
        elif a in DTYPE_BYTES:
            info["dtype"] = a
        elif a in ("true", "false"):
            # the loss kernels' bools in order: kPaired, then (the forward's) kLogSum
            info["log_sum" if "paired" in info else "paired"] = a == "true"
    if family == "words_kernel":
        info["dtype"] = "long"
    return info


# ---- the report ----
def analyse(objects: list[Path], arch: str, cuobjdump: str, env: dict) -> dict:
    enums = {"TermKind": enum_names("FASTGAN_TERM_KINDS", ROOT / "csrc/losses/losses.h"),
             "Dist": enum_names("FASTGAN_DISTS", ROOT / "csrc/sampling/sampling.h"),
             "Kernel": enum_names("FASTGAN_MMD_KERNELS", ROOT / "csrc/mmd/mmd.h")}
    kernels = []
    for obj in objects:
        resources = parse_resource_usage(run_tool([cuobjdump, "-arch", arch, "--dump-resource-usage", str(obj)]))
        threads = parse_max_threads(run_tool([cuobjdump, "-arch", arch, "-elf", str(obj)]))
        sass = parse_sass(run_tool([cuobjdump, "-arch", arch, "--dump-sass", str(obj)], env))
        names = demangle(list(resources))
        for mangled, res in resources.items():
            instrs = sass.get(mangled, [])
            entry = {"name": names[mangled], "source": obj.name.replace(".o", ""), **res,
                     "threads": threads.get(mangled), "sass_instructions": len(instrs),
                     "local_instructions": sum(i.op in ("LDL", "STL") for i in instrs)}
            entry.update(describe(names[mangled], enums))
            entry["occupancy"] = blocks_per_sm(res["registers"], res["shared"], entry["threads"] or 256)
            if entry["family"] in PER_ITERATION and instrs:
                entry["hot_loop"] = hot_loop_entry(entry, instrs)
            kernels.append(entry)
    return {"arch": arch, "model": {**H200, "lane_instructions_per_s": LANE_INSTRUCTIONS_PER_S},
            "targets_instr_per_element": TARGETS, "step": step_fraction(kernels), "kernels": kernels}


def hot_loop_entry(entry: dict, instrs: list[Instr]) -> dict | None:
    loop = hot_loop(instrs, PER_ITERATION[entry["family"]][0])
    if loop is None:
        return None
    dtype_bytes = DTYPE_BYTES[entry.get("dtype", "float")]
    elements, check = elements_per_trip(entry["family"], dtype_bytes, entry.get("paired", False), loop.hot_bytes)
    per_element = loop.hot_instructions / elements
    out = {**dataclasses.asdict(loop), "elements_per_trip": elements, "instr_per_element": per_element,
           "bytes_per_element": bytes_per_element(entry["family"], dtype_bytes), "elements_check": check}
    out["hot_blocks"] = " ".join(f"{a:#x}-{b:#x}" for a, b in loop.hot_blocks)  # one line each in the JSON
    out.update(implied_fraction(per_element, out["bytes_per_element"]))
    target = TARGETS.get(entry["family"])
    if target is not None:
        out["target"] = target
        out["meets_target"] = per_element <= target
    return out


def spills_tolerated() -> list[str]:
    """The sources CMakeLists.txt exempts from -Werror on spills."""
    m = re.search(r'set\(FASTGAN_SPILLS_TOLERATED([^)]*)\)', (ROOT / "CMakeLists.txt").read_text())
    return [Path(p).name for p in re.findall(r'"([^"]+)"', m[1])] if m else []


def short_name(k: dict) -> str:
    return re.sub(r"<.*", "", k["name"].removeprefix("void ")).split("::")[-1]


def fmt_rate(x: float) -> str:
    return f"{x / 1e9:,.0f} G/s"


def kernel_label(k: dict) -> str:
    parts = [k.get("termkind") or k.get("dist") or k.get("kernel") or "", k.get("dtype", "")]
    if (k.get("family") or "").startswith("loss"):
        parts.append("paired" if k.get("paired") else "halves")
        if k.get("log_sum"):
            parts.append("log-sum")
    return " ".join(p for p in parts if p)


def markdown(report: dict) -> str:
    kernels = report["kernels"]
    hot = [k for k in kernels if k.get("hot_loop")]
    lines = [f"# CUDA report: {report['arch']} machine code (`make cuda-report`)", "",
             "Generated by `scripts/cuda_report.py` from the objects of `make cuda-check` (no GPU needed). "
             "Counts are static: SASS instructions on the hot loop's hot path (see the script's docstring), "
             "per element that one trip handles. The hot path is the longest full trip (every element of it through "
             "the widest accesses) that avoids slow paths (CALL), unaligned or ragged-tail fallbacks (narrower "
             "accesses only) and divergent fallbacks, so it includes the optional work (per-element losses for "
             "reduction='none', a per-element upstream gradient): an upper bound for the common reduced case. "
             "Elements are logits (both of a pair), samples or words.", "",
             "**Model** (assumptions, not measurements): H200 = sm_90, "
             f"{H200['sms']} SMs x {H200['issue_per_sm_per_clk']} warp instructions/clock x 32 lanes x "
             f"{H200['clock_hz'] / 1e9:.2f} GHz = {LANE_INSTRUCTIONS_PER_S:.3g} lane-instructions/s; HBM3e "
             f"{H200['hbm_bytes_per_s'] / 1e12:.1f} TB/s. Issue-limited elements/s = that rate / "
             "(instructions per element); bandwidth-limited = HBM / (bytes per element read + written, common "
             "case: reduced loss, scalar upstream gradient); implied fraction = min(1, issue / bandwidth). The "
             "model ignores the slower pipes (MUFU at 1/4, FP64 at 1/2 rate), latency and occupancy: a fraction "
             "below 1 says the kernel cannot reach the bandwidth; 1 says only that issue does not stop it.", ""]
    # targets
    lines += ["## Targets", "", "| target | kernels | worst | met |", "| --- | --- | ---: | --- |"]
    for family, target in TARGETS.items():
        rows = [k for k in hot if k["family"] == family]
        if not rows:
            continue
        worst = max(rows, key=lambda k: k["hot_loop"]["instr_per_element"])
        met = all(k["hot_loop"]["meets_target"] for k in rows)
        missed = sum(not k["hot_loop"]["meets_target"] for k in rows)
        lines.append(f"| {family} ≤ {target:g} instr/element | {len(rows)} | "
                     f"{worst['hot_loop']['instr_per_element']:.1f} ({kernel_label(worst)}) | "
                     f"{'yes' if met else f'no: {missed} of {len(rows)} over'} |")
        f32 = [k for k in rows if k.get("dtype") == "float"]
        if f32:
            worst32 = max(f32, key=lambda k: k["hot_loop"]["instr_per_element"])
            met32 = all(k["hot_loop"]["meets_target"] for k in f32)
            lines.append(f"| {family} ≤ {target:g}, float32 only | {len(f32)} | "
                         f"{worst32['hot_loop']['instr_per_element']:.1f} ({kernel_label(worst32)}) | "
                         f"{'yes' if met32 else 'no'} |")
    step = report.get("step")
    if step:
        fwd, bwd = step["instr_per_element"]
        lines.append(f"| loss forward + backward (BceLogits float32 halves, the D step) ≥ {step['target']:.0%} of "
                     f"HBM bandwidth | 2 | {step['fraction']:.2f} ({fwd:.1f} + {bwd:.1f} instr/element) | "
                     f"{'yes' if step['fraction'] >= step['target'] else 'no'} |")
    local_hot = [k for k in hot if k["hot_loop"]["hot_local"]]
    local_loop = [k for k in hot if k["hot_loop"]["loop_local"]]
    lines.append(f"| no local memory on a hot path | {len(hot)} | {len(local_hot)} with LDL/STL | "
                 f"{'yes' if not local_hot else 'no'} |")
    lines.append(f"| no local memory anywhere in a hot loop (cold paths too) | {len(hot)} | "
                 f"{len(local_loop)} with LDL/STL | {'yes' if not local_loop else 'no: ' + ', '.join(k['family'] + ' ' + kernel_label(k) for k in local_loop)} |")
    tolerated = spills_tolerated()
    framed = sorted({f"{k['family'] or short_name(k)} {kernel_label(k)}".strip() + f" ({k['source']}, {k['stack']} B)"
                     for k in kernels if k["stack"]})
    lines += ["", "Spills: `make cuda-check` compiles every .cu with `-Xptxas -warn-spills -Werror`, so its objects "
              "exist only if no kernel spills" + (f", except in {', '.join(tolerated)} (CMakeLists.txt's "
                                                   "FASTGAN_SPILLS_TOLERATED: warnings only)" if tolerated else "") +
              ". A stack frame is a spill there, or a local array elsewhere (the float64 sincos slow path). "
              "Kernels with a stack frame: " + ("; ".join(framed) or "none") + ".", ""]
    # the rows the targets are usually quoted by
    key = [("fill_kernel", "Normal", "float"), ("fill_kernel", "Uniform", "float"), ("words_kernel", None, "long")]
    lines += ["## Key rows (float32; d_loss is BceLogits on two halves, reduced: the forward's log-sum kernel)", ""]
    loss_rows = [k for paired in (False, True) for family in STEP_TARGET["kernels"] for k in hot
                 if step_kernel(k, family, paired)]
    other_rows = [k for family, kind, dtype in key for k in hot
                  if k["family"] == family and k.get("dtype") == dtype
                  and (kind is None or kind in (k.get("termkind"), k.get("dist")))]
    for k in loss_rows + other_rows:
        h = k["hot_loop"]
        lines.append(f"- {k['family']} {kernel_label(k)}: {h['instr_per_element']:.1f} instr/element "
                     f"({h['hot_instructions']} per trip of {h['elements_per_trip']}), {k['registers']} "
                     f"registers, {k['occupancy']['blocks']} blocks/SM, LDL/STL on the hot path "
                     f"{h['hot_local']}, implied H200 bandwidth fraction {h['fraction']:.2f}")
    lines.append("")
    # hot loops
    lines += ["## Hot loops", "",
              "| kernel | variant | regs | blocks/SM (limit) | instr/trip | elements/trip | instr/element | "
              "bytes/element | issue-limited | HBM-limited | implied fraction | LDL/STL hot (loop) | target |",
              "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |"]
    order = {f: n for n, f in enumerate(PER_ITERATION)}
    dtype_order = {"float": 0, "c10::Half": 1, "c10::BFloat16": 2, "double": 3, "long": 4}
    for k in sorted(hot, key=lambda k: (order[k["family"]], dtype_order.get(k.get("dtype"), 9),
                                        k.get("paired", False), kernel_label(k))):
        h, occ = k["hot_loop"], k["occupancy"]
        target = "" if "target" not in h else ("met" if h["meets_target"] else f"over {h['target']:g}")
        check = "" if h["elements_check"] == "ok" else " (!)"
        lines.append(f"| {k['family']} | {kernel_label(k)} | {k['registers']} | {occ['blocks']} "
                     f"({occ['limited_by']}) | {h['hot_instructions']} | {h['elements_per_trip']}{check} | "
                     f"{h['instr_per_element']:.1f} | {h['bytes_per_element']} | "
                     f"{fmt_rate(h['issue_elements_per_s'])} | {fmt_rate(h['bandwidth_elements_per_s'])} | "
                     f"{h['fraction']:.2f} | {h['hot_local']} ({h['loop_local']}) | {target} |")
    # every kernel, per source
    lines += ["", "## Every kernel: resources and blocks per SM", "",
              "| source | kernel | regs | shared B | stack B | LDL/STL | threads | blocks/SM (limit) | occupancy |",
              "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |"]
    for k in sorted(kernels, key=lambda k: (k["source"], k.get("family") or k["name"], kernel_label(k))):
        occ = k["occupancy"]
        name = k["family"] or short_name(k)
        lines.append(f"| {k['source']} | {name} {kernel_label(k)} | {k['registers']} | {k['shared']} | "
                     f"{k['stack']} | {k['local_instructions']} | {k['threads'] or '256?'} | {occ['blocks']} "
                     f"({occ['limited_by']}) | {occ['occupancy']:.0%} |")
    lines += ["", f"Objects: {', '.join(report['objects'])}; {report['tools']['cuobjdump']}.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build-dir", type=Path, default=ROOT / "build" / "cuda-check",
                        help="the cuda-check build folder (make cuda-check)")
    parser.add_argument("--objects", type=Path, nargs="*", help="objects or cubins to read instead of the build's")
    parser.add_argument("--arch", default="sm_90")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "cuda-report-sm90",
                        help="writes OUTPUT.md and OUTPUT.json")
    parser.add_argument("--cuobjdump", help="path of cuobjdump (default: PATH, the toolkit, the pip wheel)")
    parser.add_argument("--nvdisasm", help="path of nvdisasm, which cuobjdump --dump-sass runs")
    args = parser.parse_args(argv)

    objects = args.objects or sorted(args.build_dir.glob("CMakeFiles/*/csrc/*/*.cu.o"))
    if not objects:
        parser.error(f"no objects under {args.build_dir}: run `make cuda-check` first")
    cuobjdump = find_tool("cuobjdump", args.cuobjdump)
    nvdisasm = find_tool("nvdisasm", args.nvdisasm)
    env = {**os.environ, "PATH": os.path.dirname(nvdisasm) + os.pathsep + os.environ.get("PATH", "")}
    report = analyse(objects, args.arch, cuobjdump, env)
    # names, not paths: the committed report should not change with the machine that wrote it
    report["tools"] = {name: next((line for line in run_tool([path, "--version"]).splitlines() if "release" in line),
                                  "unknown")
                       for name, path in (("cuobjdump", cuobjdump), ("nvdisasm", nvdisasm))}
    report["objects"] = [o.name for o in objects]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    md = markdown(report)
    args.output.with_suffix(".md").write_text(md)
    print(md[:md.index("## Every kernel")])
    return 0


if __name__ == "__main__":
    sys.exit(main())
