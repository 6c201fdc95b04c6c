"""bench/world_samples.py (the README's sample sheet of cloud, unaligned edge and edge + package) and
bench/world_quality.py (is the cloud the better model, beside real digits)."""
import torch

from dekag.miniature import data as D

def test_sample_sheet_panels_share_prompts_and_seeds_and_only_the_package_changes_the_edge(tmp_path, load_bench):
    from dekag.downlink import load_downlink
    from dekag.miniature.world import load_world

    torch.set_num_threads(1)
    mod, world = load_bench("world_samples"), load_world()
    downlink = load_downlink(world=world)
    panels = mod.sample_sheet(world, downlink, [400_000, 400_001], steps=3)
    assert list(panels) == ["cloud", "edge, unaligned", "edge + package"]
    assert all(p.shape == (10, 2, 3, 32, 32) for p in panels.values())
    again = mod.sample_sheet(world, downlink, [400_000, 400_001], steps=3)
    assert all(torch.equal(panels[k], again[k]) for k in panels)            # seeded: the same sheet twice
    plain, aligned = panels["edge, unaligned"], panels["edge + package"]
    assert not torch.allclose(plain[7], aligned[7], atol=0.1)               # the metaword redraws the subject
    mod.save_sheet(panels, tmp_path / "sheet.png")
    assert (tmp_path / "sheet.png").stat().st_size > 1000


def test_world_quality_scores_a_real_digit_as_the_ceiling_and_counts_paired_wins(tmp_path, load_bench):
    from dekag.miniature.judge import fit_judge
    from dekag.miniature.world import load_world

    mod, world, judge = load_bench("world_quality"), load_world(), fit_judge()
    sevens = world.dataset.images[world.dataset.labels == 7][:3]
    s = mod.scores(judge, world, sevens, 7)
    assert s["correct"].all() and s["typical"].all() and bool((s["nearest"] < 0.01).all())   # cdist rounding
    assert mod.scores(judge, world, sevens, 1)["nearest"].min() > 1.0      # a seven is far from every real one
    closer = mod.paired(torch.tensor([1.0, 1.0, 3.0, 1.0]), torch.tensor([2.0, 2.0, 2.0, 2.0]))
    assert closer["cloud_closer"] == 0.75 and 0.6 < closer["sign_test_p"] < 0.7          # 3 of 4: p = 0.625
    res = mod.main(["--smoke", "--out", str(tmp_path / "q.json")])
    assert [r["class"] for r in res["per_class"]] == list(range(10))
    assert all(r["n"] == 22 * len(D.WORLD_FONTS) for r in res["ceiling"]["real"])
