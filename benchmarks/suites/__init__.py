"""The suites, one module each, registered here in the order a run measures them (also the order of the tables and
the plot's panels). A module builds one `base.Suite` named SUITE; run.py, the report, the merge of reruns and
compare.py need nothing more to take a new suite in."""

from benchmarks.suites import kernels, metrics, mh, mmd, ops, penalties, samplers, scaling, training

SUITES = {module.SUITE.name: module.SUITE
          for module in (ops, samplers, mmd, mh, training, penalties, kernels, scaling, metrics)}
