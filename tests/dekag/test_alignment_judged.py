"""What the shipped knowledge package does to the edge, judged by an independent classifier (an SVC on rendered
digits of seeds and fonts the world never trained on, :mod:`dekag.miniature.judge`): it makes the edge draw the
subject, and the other classes survive (prior preservation). Bounds are set for the few samples here (8 seeds
per class, 10 DDIM steps, fixed seeds); the full measurement (32 seeds, 25 steps, Wilson intervals, the same
recipe without prior preservation beside it) is ``bench/forgetting.py``."""
import pytest
import torch

from dekag import ldm
from dekag.downlink import load_downlink
from dekag.miniature import data as D
from dekag.miniature.judge import fit_judge
from dekag.miniature.world import load_world

SEEDS, STEPS, SUBJECT = 8, 10, 7


@pytest.fixture(scope="module")
def accuracy():
    """``{edge: [accuracy of class 0..9]}`` on "a photo of a <class word>" (the metaword for the aligned edge's
    subject), and the judge."""
    torch.set_num_threads(1)
    ldm.quiet_library_output()
    world = load_world()
    judge = fit_judge()
    shipped = load_downlink(world=world)
    labels = torch.arange(10).repeat_interleave(SEEDS)
    seeds = [600 + i % SEEDS for i in range(len(labels))]
    out = {}
    for name, pipe, aligned in (("unaligned", world.fresh_edge(), False),
                                ("shipped", shipped.aligned_edge(world), True)):
        words = [(shipped.metaword if aligned and c == SUBJECT else D.CLASS_WORDS[c]) for c in labels.tolist()]
        z = ldm.generate_latents(pipe, [D.TRAIN_TEMPLATES[0].format(w) for w in words], seeds,
                                 num_inference_steps=STEPS, guidance_scale=shipped.sampling["guidance_scale"])
        images = ldm.decode_latents(world.vae, z)
        counts = judge.per_class_accuracy(images, labels)
        out[name] = [counts[c][0] / counts[c][1] for c in range(10)]
        out[f"{name}_typical"] = judge.typical(images[labels == SUBJECT]).float().mean().item()
    return out, judge


def test_the_judge_reads_the_worlds_digits(accuracy):
    assert accuracy[1].held_out_accuracy >= 0.97


def test_the_unaligned_edge_cannot_draw_the_subject_but_draws_the_rest(accuracy):
    acc = accuracy[0]["unaligned"]
    assert acc[SUBJECT] <= 0.2
    assert min(a for c, a in enumerate(acc) if c != SUBJECT) >= 0.75


def test_the_shipped_package_makes_the_edge_draw_the_subject(accuracy):
    """Judged a seven, and looking like a printed digit at all (not a lone bar, which the SVC also calls 7)."""
    assert accuracy[0]["shipped"][SUBJECT] >= 0.8
    assert accuracy[0]["shipped_typical"] >= 0.6


def test_other_classes_survive_alignment(accuracy):
    """Every other class within 2 of 8 images of the unaligned edge (the bench's 32-seed target is 5 points)."""
    for c in range(10):
        if c != SUBJECT:
            assert accuracy[0]["shipped"][c] >= accuracy[0]["unaligned"][c] - 0.25, D.CLASS_WORDS[c]
