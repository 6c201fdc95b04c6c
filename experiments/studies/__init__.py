"""Studies: one module per study, one ``dekag-testbed study NAME`` command, one TOML config each.

Every study runs its grid through :mod:`experiments.sweep` (local processes, or a Dask cluster with
``--cluster``), appends one JSON row per grid point and seed as it goes (rerunning resumes), and writes
``summary.json``, figures and ``report.md`` into its output folder. The over-the-air ones use the same
frame pipeline as the loop (:mod:`experiments.closed_loop`), with the digital baseline beside JSCC in every
PSNR-vs-SNR figure.

======================  =====================================================================================
study                   what it shows
======================  =====================================================================================
``csi``                 CALA gated on estimated vs genie vs no CSI (the paper assumes perfect CSI), with the
                        digital baseline's MCS chosen from the same CSI
``mismatch``            codecs trained at one condition (SNR / delay spread) tested across the grid, over the
                        real frame pipeline, beside the codec trained across conditions and the oracles
``staleness``           CSI 0, 1, 4 and 16 frames old through the ZeroMQ feedback under Doppler
``sim_to_air``          SigMF captures (fake Pluto, or recorded in the lab) replayed through receiver and decoder
                        against the emulator at the same measured SNR
``ota``                 the lab run as a study: edge and user nodes over the Pluto backend across TX gains
                        (through the fake device here), with the runbook
======================  =====================================================================================

    dekag-testbed study csi --config experiments/configs/study_csi.toml --out runs/study_csi
    dekag-testbed study csi --smoke --out /tmp/csi              # seconds: a 2-point grid, the shipped codec
"""
from __future__ import annotations

STUDIES = {"csi": "experiments.studies.csi", "mismatch": "experiments.studies.mismatch",
           "staleness": "experiments.studies.staleness", "sim_to_air": "experiments.studies.sim_to_air",
           "ota": "experiments.studies.ota"}
"""Study name → module (each defines ``Config``, ``SMOKE``, ``tasks``, ``evaluate`` and ``report``)."""
