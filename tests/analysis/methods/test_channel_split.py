"""The recursive channel split (analysis/channel_split.py).

References: a hand-computed tree, and an independent transcription of the seed
notebook's recursion (re-centre the node's values, split on sign, recurse on the
centred child values; chain rule from the node's name) run on real ImageNet rows.
"""

from __future__ import annotations

import numpy as np
import pytest

from classmap.analysis.methods.channel_split import (
    BELOW_MIN_SIZE,
    ONE_SIDED,
    SPLIT,
    SPLIT_MODES,
    split_class,
    split_head_class,
)
from classmap.analysis.errors import ClassmapError

ROWS = (0, 118, 281, 407, 999)


def _seed_chains(row: np.ndarray, min_size: int = 20) -> dict[str, list[int]]:
    """The seed notebook's recursion, written from its description: sign path → channels.

    Values handed to a child are the parent's *centred* values, as in the notebook.
    """
    nodes: dict[str, list[int]] = {}

    def visit(values: np.ndarray, channels: np.ndarray, name: str) -> None:
        if len(values) < min_size:
            return
        centred = values - values.mean()
        upper = centred >= 0
        if upper.all() or not upper.any():
            return
        grow = "+-" if name == "" else name[-1]
        for sign, mask in (("+", upper), ("-", ~upper)):
            if sign in grow:
                nodes[name + sign] = sorted(channels[mask].tolist())
                visit(centred[mask], channels[mask], name + sign)

    visit(row.astype(np.float64), np.arange(row.size), "")
    return nodes


def test_hand_computed_tree():
    row = np.array([5.0, 4.0, 3.0, 2.0, 1.0, 0.0])
    tree = split_class(row, min_size=2)
    assert tree.label == ("all", "+", "++", "+++", "-", "--")
    assert [c.tolist() for c in tree.channels] == [[0, 1, 2, 3, 4, 5], [0, 1, 2], [0, 1], [0],
                                                   [3, 4, 5], [5]]
    assert tree.parent.tolist() == [-1, 0, 1, 2, 0, 4]
    assert tree.depth.tolist() == [0, 1, 2, 3, 1, 2]
    assert tree.size.tolist() == [6, 3, 2, 1, 3, 1]
    assert tree.mean.tolist() == [2.5, 4.0, 4.5, 5.0, 1.0, 0.0]
    assert tree.stop == (SPLIT, SPLIT, SPLIT, BELOW_MIN_SIZE, SPLIT, BELOW_MIN_SIZE)
    assert tree.terminal_positive == 3 and tree.discriminative_channels.tolist() == [0]
    assert tree.terminal_negative == 5 and tree.confusing_channels.tolist() == [5]
    full = split_class(row, mode="full", min_size=2)
    assert full.label == ("all", "+", "++", "+++", "++-", "+-", "-", "-+", "-++", "-+-", "--")
    assert full.terminal_positive == 3 and full.terminal_negative == 10


def test_chains_match_the_seed_recursion_on_imagenet_rows(lite0_head):
    for k in ROWS:
        row = lite0_head.weight[k]
        tree = split_head_class(lite0_head.weight, k)
        expected = _seed_chains(row)
        got = {label: c.tolist() for label, c in zip(tree.label[1:], tree.channels[1:])}
        assert got == expected, k
        assert tree.class_index == k


def test_full_tree_is_a_partition_and_contains_the_chains(lite0_head):
    for k in ROWS:
        row = lite0_head.weight[k].astype(np.float64)
        full = split_head_class(lite0_head.weight, k, mode="full", min_size=20)
        chains = split_head_class(lite0_head.weight, k, mode="chains", min_size=20)
        by_label = dict(zip(full.label, full.channels))
        for label, channels in zip(chains.label, chains.channels):
            np.testing.assert_array_equal(by_label[label], channels)
        for node in range(full.num_nodes):
            children = np.flatnonzero(full.parent == node)
            if full.stop[node] == SPLIT:
                assert full.size[node] >= 20 and len(children) == 2
                plus, minus = (full.channels[c] for c in children)
                union = np.sort(np.concatenate([plus, minus]))
                np.testing.assert_array_equal(union, full.channels[node])
                assert row[plus].min() >= full.mean[node] > row[minus].max()
            else:
                assert len(children) == 0
                assert full.size[node] < 20 or full.stop[node] == ONE_SIDED
            assert full.mean[node] == pytest.approx(row[full.channels[node]].mean(), rel=1e-12)
        assert full.terminal_positive == full.label.index(chains.label[chains.terminal_positive])
        # The largest weight always stays on the positive chain, the smallest on the negative.
        assert int(np.argmax(row)) in chains.discriminative_channels
        assert int(np.argmin(row)) in chains.confusing_channels
        assert chains.size[chains.terminal_positive] < 20


def test_unsplittable_rows_give_a_root_only_tree():
    for row in (np.zeros(64), np.full(64, 0.3, dtype=np.float32)):
        tree = split_class(row)
        assert tree.num_nodes == 1 and tree.stop == (ONE_SIDED,)
        assert tree.terminal_positive == tree.terminal_negative == 0
        assert tree.discriminative_channels.tolist() == list(range(64))
    small = split_class(np.arange(10.0), min_size=20)
    assert small.num_nodes == 1 and small.stop == (BELOW_MIN_SIZE,)


def test_chain_and_icicle_columns():
    row = np.random.default_rng(1).normal(size=300)
    tree = split_class(row, mode="full", min_size=20, class_index=4)
    icicle = tree.to_icicle(class_name="goldfish")
    assert icicle["labels"][0] == "goldfish" and icicle["parents"][0] == ""
    ids = icicle["ids"]
    assert len(set(ids)) == len(ids) == tree.num_nodes
    for node, parent in enumerate(icicle["parents"][1:], start=1):
        assert parent == str(tree.parent[node])
        assert icicle["values"][node] <= icicle["values"][int(parent)]
    chain = tree.chain("+")
    assert [tree.label[n] for n in chain] == ["all"] + ["+" * d for d in range(1, len(chain))]
    assert tree.node_id.tolist() == list(range(tree.num_nodes))


def test_bad_arguments_raise_one_line_errors():
    row = np.arange(30.0)
    with pytest.raises(ClassmapError, match="choose one of " + ", ".join(SPLIT_MODES)):
        split_class(row, mode="binary")
    with pytest.raises(ClassmapError, match="integer ≥ 2"):
        split_class(row, min_size=1)
    with pytest.raises(ClassmapError, match="out of range"):
        split_head_class(np.zeros((3, 30)), 3)
    with pytest.raises(ClassmapError, match="NaN or Inf"):
        split_class(np.array([1.0, np.nan, 2.0]))
    with pytest.raises(ClassmapError, match="'\\+' or '-'"):
        split_class(row).chain("x")
