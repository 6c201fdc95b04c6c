"""What alignment does to the edge, judged by an independent classifier (an SVC on real digits,
:mod:`dekag.miniature.judge`): the shipped package makes the edge draw the subject; prior preservation keeps the
other classes. Bounds are set for the few samples here (8 seeds per class, 10 DDIM steps, fixed seeds); the
full measurement (32 seeds, 25 steps, Wilson intervals) is ``bench/forgetting.py``."""
from pathlib import Path

import pytest
import torch

from dekag import ldm
from dekag.downlink import load_downlink
from dekag.knowledge_package import base_model_from_folder, load_package
from dekag.makd.align import apply_package
from dekag.miniature import data as D
from dekag.miniature.judge import fit_judge
from dekag.miniature.world import load_world

PRIOR_PACKAGE = Path(__file__).resolve().parents[2] / "bench" / "reference" / "makd_prior"
"""Metaword + G-LoRA of ``bench/forgetting.py``'s prior-preservation run (prior_loss_weight 3)."""
SEEDS, STEPS, SUBJECT = 8, 10, 7


@pytest.fixture(scope="module")
def accuracy():
    """``{edge: [accuracy of class 0..9]}`` on "a photo of a <class word>" (the metaword for the aligned
    edges' subject), and the judge."""
    torch.set_num_threads(1)
    ldm.quiet_library_output()
    world = load_world()
    judge = fit_judge(world.dataset)
    shipped = load_downlink(world=world).aligned_edge(world)
    prior = world.fresh_edge()
    apply_package(prior, load_package(PRIOR_PACKAGE, expected_base=base_model_from_folder(
        world.folder / "edge", "dekag-miniature-edge")))
    labels = torch.arange(10).repeat_interleave(SEEDS)
    seeds = [600 + i % SEEDS for i in range(len(labels))]
    out = {}
    for name, pipe, aligned in (("unaligned", world.fresh_edge(), False), ("shipped", shipped, True),
                                ("prior", prior, True)):
        words = [("<meta-seven>" if aligned and c == SUBJECT else D.CLASS_WORDS[c]) for c in labels.tolist()]
        z = ldm.generate_latents(pipe, [D.TRAIN_TEMPLATES[0].format(w) for w in words], seeds,
                                 num_inference_steps=STEPS, guidance_scale=3.0)
        counts = judge.per_class_accuracy(ldm.decode_latents(world.vae, z), labels)
        out[name] = [counts[c][0] / counts[c][1] for c in range(10)]
    return out, judge


def test_the_judge_reads_real_digits(accuracy):
    assert accuracy[1].held_out_accuracy >= 0.97


def test_the_unaligned_edge_cannot_draw_the_subject_but_draws_the_rest(accuracy):
    acc = accuracy[0]["unaligned"]
    assert acc[SUBJECT] <= 0.2
    assert min(a for c, a in enumerate(acc) if c != SUBJECT) >= 0.75


def test_the_shipped_package_aligns_the_edge(accuracy):
    assert accuracy[0]["shipped"][SUBJECT] >= 0.75


def test_the_shipped_package_forgets_within_its_measured_bound(accuracy):
    """The shipped package (no prior preservation) is known to forget (bench: mean 0.47 over the other classes,
    "five" 0.00); this fails if it forgets more."""
    others = [a for c, a in enumerate(accuracy[0]["shipped"]) if c != SUBJECT]
    assert sum(others) / len(others) >= 0.35


def test_prior_preservation_keeps_every_other_class(accuracy):
    acc = accuracy[0]["prior"]
    assert acc[SUBJECT] >= 0.75
    assert min(a for c, a in enumerate(acc) if c != SUBJECT) >= 0.5
    others = [a for c, a in enumerate(acc) if c != SUBJECT]
    shipped = [a for c, a in enumerate(accuracy[0]["shipped"]) if c != SUBJECT]
    assert sum(others) > sum(shipped) + 0.2 * len(others)      # ≥ 20 points better on average
