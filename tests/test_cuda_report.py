"""scripts/cuda_report.py: the SASS loop finder and hot-path counter on hand-written SASS, the occupancy arithmetic,
and (where nvcc and cuobjdump exist) the whole chain on a tiny kernel compiled here."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("cuda_report", ROOT / "scripts" / "cuda_report.py")
cr = importlib.util.module_from_spec(_spec)
sys.modules["cuda_report"] = cr
_spec.loader.exec_module(cr)

# cuobjdump --dump-sass's layout. One grid-stride loop (0x40 .. 0x130): a 16-byte load with a scalar fallback, a
# slow path that CALLs a subroutine, a 16-byte store and thread 0's narrow store (predicated, so every trip passes
# it), then the backward branch; the end-of-code self branch at 0x150 is not a loop.
SASS = """
	code for sm_90

		Function : _Z4testPK6float4PS_l
	.headerflags	@"EF_CUDA_SM90 EF_CUDA_VIRTUAL_SM(EF_CUDA_SM90)"
        /*0000*/                   LDC R1, c[0x0][0x28] ;                   /* 0x00000a00ff017b82 */
                                                                            /* 0x000fe20000000800 */
        /*0010*/                   S2R R0, SR_TID.X ;
        /*0020*/                   ISETP.GE.AND P0, PT, R0, UR4, PT ;
        /*0030*/               @P0 EXIT ;
        /*0040*/                   ISETP.NE.AND P1, PT, R0, RZ, PT ;
        /*0050*/              @!P2 BRA 0x90 ;
        /*0060*/                   LDG.E R4, desc[UR6][R2.64] ;
        /*0070*/                   LDG.E R5, desc[UR6][R2.64+0x4] ;
        /*0080*/                   BRA 0xa0 ;
        /*0090*/                   LDG.E.128 R4, desc[UR6][R2.64] ;
        /*00a0*/                   FMUL R4, R4, R4 ;
        /*00b0*/                   FSETP.GT.AND P3, PT, R4, 1, PT ;
        /*00c0*/              @!P3 BRA 0xf0 ;
        /*00d0*/                   MOV R20, 0xf0 ;
        /*00e0*/                   CALL.REL.NOINC 0x200 ;
        /*00f0*/                   STG.E.128 desc[UR6][R8.64], R4 ;
        /*0100*/              @!P1 STG.E desc[UR6][R10.64], R4 ;
        /*0110*/                   IADD3 R0, R0, 0x100, RZ ;
        /*0120*/                   ISETP.LT.AND P0, PT, R0, UR4, PT ;
        /*0130*/               @P0 BRA 0x40 ;
        /*0140*/                   EXIT ;
        /*0150*/                   BRA 0x150;
        /*0200*/                   MUFU.RCP R4, R4 ;
        /*0210*/                   RET.REL.NODEC R20 0x0 ;
"""


def test_parse_sass_reads_every_instruction_of_the_function():
    functions = cr.parse_sass(SASS)
    assert list(functions) == ["_Z4testPK6float4PS_l"]
    instrs = functions["_Z4testPK6float4PS_l"]
    assert len(instrs) == 24
    assert instrs[3].pred == "@P0" and instrs[3].op == "EXIT"
    assert instrs[9].opcode == "LDG.E.128" and cr.global_width(instrs[9]) == ("LDG", 16)
    assert cr.global_width(instrs[6]) == ("LDG", 4)
    assert cr.branch_target(instrs[5]) == 0x90


def test_loops_are_backward_branches_only():
    instrs = cr.parse_sass(SASS)["_Z4testPK6float4PS_l"]
    assert cr.loops(instrs) == [(0x40, 0x130)]


def test_hot_path_skips_the_fallback_and_the_slow_path_but_keeps_what_every_trip_runs():
    instrs = cr.parse_sass(SASS)["_Z4testPK6float4PS_l"]
    loop = cr.hot_loop(instrs)
    assert (loop.head, loop.latch) == (0x40, 0x130)
    assert loop.static_instructions == 16
    # 0x40-0x50, the 16-byte load at 0x90, 0xa0-0xc0, 0xf0-0x130 (thread 0's narrow store included)
    assert loop.hot_blocks == [(0x40, 0x50), (0x90, 0x90), (0xa0, 0xc0), (0xf0, 0x130)]
    assert loop.hot_instructions == 2 + 1 + 3 + 5
    assert loop.hot_bytes == {"LDG": 16, "STG": 16}  # the widest accesses only: thread 0's narrow store is no element
    assert loop.cold_calls == 1 and loop.hot_local == 0 and loop.loop_local == 0


def test_hot_path_is_a_full_trip_and_keeps_predicated_scalar_twins():
    # The loss kernels' shapes: the 16-byte load beside its scalar twin in one block (nvcc if-converted the choice:
    # both issue, so the block is hot), and a branch around it (a chunk of fewer packs) through a longer block
    # without loads. The longest path would take that detour; the hot path is a full trip, through the load.
    text = (SASS.replace("@!P2 BRA 0x90 ;", "@!P4 BRA 0x90 ;")
            .replace("LDG.E R4, desc[UR6][R2.64] ;", "FADD R4, R4, R4 ;")
            .replace("LDG.E R5, desc[UR6][R2.64+0x4] ;", "FADD R5, R5, R5 ;")
            .replace("LDG.E.128 R4, desc[UR6][R2.64] ;", "@P5 LDG.E.128 R4, desc[UR6][R2.64] ;\n"
                     "        /*0098*/              @!P5 LDG.E R4, desc[UR6][R2.64] ;"))
    loop = cr.hot_loop(cr.parse_sass(text)["_Z4testPK6float4PS_l"])
    assert loop.hot_blocks == [(0x40, 0x50), (0x90, 0x98), (0xa0, 0xc0), (0xf0, 0x130)]
    assert loop.hot_instructions == 2 + 2 + 3 + 5
    assert loop.hot_bytes == {"LDG": 16, "STG": 16}


def test_local_memory_in_the_loop_is_counted():
    text = SASS.replace("MOV R20, 0xf0", "STL [R1], R4").replace("FMUL R4, R4, R4", "LDL R4, [R1]")
    loop = cr.hot_loop(cr.parse_sass(text)["_Z4testPK6float4PS_l"])
    assert loop.hot_local == 1  # the LDL on the path; the STL sits in the cold slow path
    assert loop.loop_local == 2


def test_resource_usage_and_launch_bounds():
    usage = """
Resource usage:
 Common:
  GLOBAL:0
 Function _Z1kPfi:
  REG:40 STACK:16 SHARED:33536 LOCAL:0 CONSTANT[0]:540 TEXTURE:0 SURFACE:0 SAMPLER:0
"""
    assert cr.parse_resource_usage(usage) == {"_Z1kPfi": {"registers": 40, "stack": 16, "shared": 33536, "local": 0}}
    elf = """.nv.info._Z1kPfi
	<0x1>
	Attribute:	EIATTR_MAX_THREADS
	Format:	EIFMT_SVAL
	Value:	0x80 0x1 0x1 
"""
    assert cr.parse_max_threads(elf) == {"_Z1kPfi": 128}


@pytest.mark.parametrize("regs,shared,threads,blocks,limit", [
    (32, 0, 256, 8, "registers"),       # 32 x 256 = 8192 registers a block: 8 blocks, also the thread limit
    (80, 0, 256, 3, "registers"),       # 2560 a warp -> 25 warps -> 3 blocks of 8 warps
    (90, 0, 256, 2, "registers"),       # rounded to 96 a thread: 21 warps -> 2 blocks
    (64, 34560, 256, 4, "registers"),   # 4 by registers, 6 by shared memory (cuobjdump's figure, reserve included)
    (24, 100000, 256, 2, "shared"),
    (16, 0, 32, 32, "cap"),
])
def test_blocks_per_sm(regs, shared, threads, blocks, limit):
    occ = cr.blocks_per_sm(regs, shared, threads)
    assert occ["blocks"] == blocks
    assert occ["limits"][limit] == blocks
    if shared:
        assert occ["limits"]["shared"] == 233472 // shared


def test_implied_fraction():
    # 25 instructions per float32 element read: 3.3e13 / 25 = 1.34e12 elements/s issued, 4.8e12 / 4 = 1.2e12 by HBM
    f = cr.implied_fraction(25.0, 4)
    assert f["fraction"] == 1.0
    f = cr.implied_fraction(100.0, 4)
    assert f["fraction"] == pytest.approx(cr.LANE_INSTRUCTIONS_PER_S / 100 / 1.2e12)
    assert 0.25 < f["fraction"] < 0.3


def test_elements_per_trip_follows_unrolling_and_flags_a_mismatch():
    # float32 backward, halves: one 16-byte pack of 4 gradients stored per iteration
    assert cr.elements_per_trip("loss_backward_kernel", 4, False, {"LDG": 32, "STG": 16}) == (4, "ok")
    assert cr.elements_per_trip("loss_backward_kernel", 4, False, {"LDG": 64, "STG": 32}) == (8, "ok")
    # paired float64 forward: 4 packs of 2 doubles from each of a and b
    assert cr.elements_per_trip("loss_forward_kernel", 8, True, {"LDG": 128, "STG": 0}) == (16, "ok")
    # float32 forward, halves: 8 packs of 4 logits per chunk
    assert cr.elements_per_trip("loss_forward_kernel", 4, False, {"LDG": 128, "STG": 16}) == (32, "ok")
    elements, check = cr.elements_per_trip("loss_forward_kernel", 4, False, {"LDG": 48, "STG": 0})
    assert elements == 32 and "PER_ITERATION" in check


def test_describe_names_the_template_arguments():
    enums = {"TermKind": ["BceLogits", "BceProbs"], "Dist": ["Normal", "Uniform"]}
    name = ("void fastgan::losses::(anonymous namespace)::loss_forward_kernel<(fastgan::losses::TermKind)1, "
            "c10::Half, true, false>(fastgan::losses::(anonymous namespace)::ForwardParams<c10::Half>)")
    d = cr.describe(name, enums)
    assert (d["family"], d["termkind"], d["dtype"], d["paired"], d["log_sum"]) == (
        "loss_forward_kernel", "BceProbs", "c10::Half", True, False)
    assert cr.kernel_label(d) == "BceProbs c10::Half paired"
    # the forward's second bool is kLogSum (the reduced BCE with logits), labelled and chosen for the D step
    d = cr.describe(name.replace("TermKind)1, c10::Half, true, false", "TermKind)0, float, false, true"), enums)
    assert (d["termkind"], d["dtype"], d["paired"], d["log_sum"]) == ("BceLogits", "float", False, True)
    assert cr.kernel_label(d) == "BceLogits float halves log-sum"
    assert cr.step_kernel(d, "loss_forward_kernel") and not cr.step_kernel({**d, "log_sum": False},
                                                                           "loss_forward_kernel")
    d = cr.describe("void fastgan::sampling::(anonymous namespace)::words_kernel(long*, StreamArgs)", enums)
    assert (d["family"], d["dtype"]) == ("words_kernel", "long")
    # the enumerators come from the source's list macros
    assert cr.enum_names("FASTGAN_TERM_KINDS", ROOT / "csrc/losses/losses.h")[0] == "BceLogits"
    assert cr.enum_names("FASTGAN_DISTS", ROOT / "csrc/sampling/sampling.h")[:2] == ["Normal", "Uniform"]


def _tool(name):
    try:
        return cr.find_tool(name, None)
    except FileNotFoundError:
        return None


NVCC = shutil.which("nvcc") or ("/usr/local/cuda/bin/nvcc" if os.access("/usr/local/cuda/bin/nvcc", os.X_OK) else None)


@pytest.mark.skipif(not (NVCC and _tool("cuobjdump") and _tool("nvdisasm")),
                    reason="needs nvcc, cuobjdump and nvdisasm (make cuda-report installs the last two)")
def test_a_compiled_grid_stride_kernel(tmp_path):
    src = tmp_path / "k.cu"
    src.write_text("""
__global__ void __launch_bounds__(128) twice(const float4* __restrict__ x, float4* __restrict__ y, long n) {
  for (long i = blockIdx.x * 128L + threadIdx.x; i < n; i += gridDim.x * 128L) {
    float4 v = x[i];
    y[i] = make_float4(2.f * v.x, 2.f * v.y, 2.f * v.z, 2.f * v.w);
  }
}
""")
    cubin = tmp_path / "k.cubin"
    subprocess.run([NVCC, "-cubin", "-arch=sm_90", "-o", str(cubin), str(src)], check=True)
    cuobjdump, nvdisasm = _tool("cuobjdump"), _tool("nvdisasm")
    env = {**os.environ, "PATH": os.path.dirname(nvdisasm) + os.pathsep + os.environ.get("PATH", "")}
    sass = cr.parse_sass(cr.run_tool([cuobjdump, "--dump-sass", str(cubin)], env))
    (name, instrs), = sass.items()
    assert name == "_Z5twicePK6float4PS_l"
    loop = cr.hot_loop(instrs)
    # one float4 in and one out per iteration; nvcc unrolls such a loop (4 times with nvcc 13.0)
    unroll = loop.hot_bytes["STG"] // 16
    assert unroll >= 1 and loop.hot_bytes == {"LDG": 16 * unroll, "STG": 16 * unroll}
    assert cr.elements_per_trip("fill_kernel", 4, False, loop.hot_bytes) == (4 * unroll, "ok")
    assert loop.hot_local == 0
    assert 4 * unroll <= loop.hot_instructions <= loop.static_instructions < 40 * unroll
    usage = cr.parse_resource_usage(cr.run_tool([cuobjdump, "--dump-resource-usage", str(cubin)]))
    assert usage[name]["stack"] == 0 and 0 < usage[name]["registers"] < 32
    assert cr.parse_max_threads(cr.run_tool([cuobjdump, "-elf", str(cubin)])) == {name: 128}


def test_the_committed_report_renders_to_the_committed_table():
    base = ROOT / "benchmarks" / "results" / "cuda-report-sm90"
    report = json.loads(base.with_suffix(".json").read_text())
    assert cr.markdown(report) == base.with_suffix(".md").read_text()
    # every hot loop the targets speak of is there, and its numbers add up
    hot = [k for k in report["kernels"] if k.get("hot_loop")]
    assert {k["family"] for k in hot} == set(cr.PER_ITERATION)
    for k in hot:
        h = k["hot_loop"]
        assert h["instr_per_element"] == pytest.approx(h["hot_instructions"] / h["elements_per_trip"])
        assert h["elements_check"] == "ok"
