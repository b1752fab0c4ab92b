"""The Compare page as plain functions: sources in, measures, figures and links out."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest
from scipy import stats
from scipy.cluster import hierarchy
from scipy.spatial.distance import squareform

from classmap.app.pages.compare import callbacks as page
from classmap.app.pages.compare import figures


def wordnet_by_hand(class_ids) -> np.ndarray:
    """[C, C] WordNet distance from the ancestor hops alone: d(a, b) = min over synsets s
    above both of max(hops(a → s), hops(b → s)) (METHODS.md §5), one row at a time."""
    from classmap.analysis.wordnet.graph import ancestor_table, load_wordnet

    hops = ancestor_table(load_wordnet(), tuple(class_ids)).hops.toarray().astype(np.int64)
    above = hops > 0  # stored as hops + 1
    distance = np.empty((len(hops), len(hops)))
    for a in range(len(hops)):
        both = above & above[a]
        distance[a] = np.where(both, np.maximum(hops, hops[a]) - 1, np.iinfo(np.int64).max
                               ).min(axis=1)
    return distance


def test_lite0_weights_against_wordnet(services, lite0_view, lite0_pearson):
    summary, bk, tangle, table = page.compare_logic(
        services, ("lite0-imagenet", "cosine", "ward"), ("lite0-imagenet", "wordnet", "average"),
        99)
    text = str(summary)
    assert "Spearman ρ" in text and "Mantel r" in text and "p = 0.01" in text
    # The shown ρ against scipy's Spearman of the two condensed distance matrices, built
    # here: 1 − Pearson r of the raw head rows (= cosine of the standardised rows) and the
    # WordNet hop distance taken straight from the ancestor table (lowest common hypernym:
    # min over shared ancestors of the larger of the two hop counts), not the page's code.
    expected = stats.spearmanr(squareform(1.0 - lite0_pearson, checks=False),
                               squareform(wordnet_by_hand(lite0_view.ids), checks=False))
    shown = [child for child in summary if "Spearman ρ" in str(child)]
    assert len(shown) == 1 and f"{expected.statistic:.3f}" in str(shown[0])
    assert 0.1 < expected.statistic < 0.9  # a real association, not a degenerate matrix
    assert bk.data[0].name == "B_k" and len(bk.data[0].x) == len(bk.data[1].x) > 10
    assert len(tangle.data) == 5 and tangle.data[3].hovertext[0]
    pairs, _title, classes = table.children
    rows = pairs.children[1:]
    assert len(rows) == 50
    link = rows[0].children[0].children
    query = parse_qs(urlparse(link.href).query)
    i, j = (int(v) for v in query["classes"][0].split(","))
    assert query["model"] == ["lite0-imagenet"] and query["focal"] == [lite0_view.ids[i]]
    assert link.children == f"{lite0_view.short_names[i]} — {lite0_view.short_names[j]}"
    overlaps = [float(row.children[1].children) for row in classes.children[1:]]
    assert len(overlaps) == page.PLACED_DIFFERENTLY and overlaps == sorted(overlaps)


def test_bad_choices_give_one_line_instead_of_results(services):
    summary, _bk, _tangle, table = page.compare_logic(
        services, ("lite0-imagenet", "wordnet", "ward"), ("lite0-imagenet", "cosine", "ward"), 9)
    assert "ward needs Euclidean geometry" in str(summary) and table == []
    summary, *_ = page.compare_logic(
        services, ("small", "cosine", "ward"), ("lite0-imagenet", "cosine", "ward"), 9)
    assert "different class sets" in str(summary)
    summary, *_ = page.compare_logic(
        services, ("small", "wordnet", "average"), ("small", "cosine", "ward"), 9)
    assert "no WordNet ground truth" in str(summary)


@pytest.mark.parametrize("a, permutations", [
    (("../../etc/passwd", "cosine", "ward"), 99),
    ((["lite0-imagenet"], "cosine", "ward"), 99),
    (("lite0-imagenet", "../x", "ward"), 99),
    (("lite0-imagenet", "cosine", "ward"), [0] * 1000),
    (("lite0-imagenet", "cosine", "ward"), -1),
    (("lite0-imagenet", "cosine", "ward"), 10**18),
    (("lite0-imagenet", "cosine", "ward"), "../x"),
])
def test_hostile_values_give_one_line_without_repeating_them(services, a, permutations):
    summary, *_rest, table = page.compare_logic(services, a, ("lite0-imagenet", "cosine", "ward"),
                                                permutations)
    text = str(summary)
    assert table == [] and "../" not in text and "Error" not in text.replace("cm-summary-error", "")


def test_tree_coordinates_put_leaves_at_their_positions():
    from tests.app.shell.test_tree_layout import coverage

    linkage = np.array([[0, 1, 1, 2], [2, 3, 2, 3]], dtype=float)
    xs, ys = figures.tree_coordinates(linkage, np.array([2, 0, 1]))
    assert not np.isnan(xs).any()  # one polyline
    # by hand: leaves 0 (position 1) and 1 (position 2) join at height 1/2; leaf 2
    # (position 0) joins their node (mid 1.5) at the top, height 1
    by_hand_x = [0, 0.5, 0.5, 0, np.nan, 0, 1, 1, 0.5, np.nan]
    by_hand_y = [1, 1, 2, 2, np.nan, 0, 0, 1.5, 1.5, np.nan]
    assert coverage(xs, ys) == coverage(by_hand_x, by_hand_y)


@pytest.mark.parametrize("method", ["ward", "average", "single"])
def test_tree_coordinates_cover_scipys_links_in_any_order_the_tree_allows(method):
    from tests.app.shell.test_tree_layout import coverage

    rng = np.random.default_rng(5)
    linkage = hierarchy.linkage(rng.normal(size=(30, 3)), method)
    # another order of the same tree: its merges with the children turned
    order = hierarchy.leaves_list(hierarchy.optimal_leaf_ordering(linkage, rng.normal(
        size=(30, 3))))
    xs, ys = figures.tree_coordinates(linkage, order)
    # the ⊏ of each merge, by hand: leaves at their positions, a node at its children's mid
    top = linkage[-1, 2]
    ref_x, ref_y = [], []
    position = np.empty(30)
    position[order] = np.arange(30)
    place = list(position) + [0.0] * 29
    height = [0.0] * 30 + list(linkage[:, 2])
    for r, (a, b, h, _n) in enumerate(linkage):
        a, b = int(a), int(b)
        place[30 + r] = (place[a] + place[b]) / 2
        ref_x += [height[a] / top, h / top, h / top, height[b] / top, np.nan]
        ref_y += [place[a], place[a], place[b], place[b], np.nan]
    assert coverage(xs, ys) == coverage(ref_x, ref_y)


def test_tanglegram_links_join_each_class_s_two_leaves():
    rng = np.random.default_rng(0)
    a = hierarchy.linkage(rng.normal(size=(12, 2)), "ward")
    b = hierarchy.linkage(rng.normal(size=(12, 2)), "ward")
    order_a, order_b = hierarchy.leaves_list(a), hierarchy.leaves_list(b)
    figure = figures.tanglegram_figure(a, order_a, b, order_b, [str(k) for k in range(12)],
                                       "A", "B", highlight=[3])
    ys = np.asarray(figure.data[0].y, dtype=float).reshape(-1, 3)[:, :2]
    for cls in range(12):
        assert ys[cls, 0] == list(order_a).index(cls) and ys[cls, 1] == list(order_b).index(cls)
    assert figure.data[-1].name == "most disagreeing"
    marked = np.asarray(figure.data[-1].y, dtype=float)[:2]
    assert list(marked) == [list(order_a).index(3), list(order_b).index(3)]


def test_image_source_from_the_cached_analysis(services, lenet_digits):
    from scipy import stats
    from scipy.spatial.distance import squareform

    from classmap.app.shell.images import image_services_for

    found = image_services_for(services).result("lenet-digits", "digits")  # the Samples job
    summary, _bk, tangle, table = page.compare_logic(
        services, ("lenet-digits", "confidence", "average", "digits"),
        ("lenet-digits", "cosine", "ward", "digits"), 9)
    text = str(summary)
    assert "Compared over all 10 classes" in text
    cosine = 1.0 - np.corrcoef(np.asarray(lenet_digits.head.weight, dtype=np.float64))
    np.fill_diagonal(cosine, 0.0)
    expected = stats.spearmanr(squareform(found.analysis.js, checks=False),
                               squareform(cosine, checks=False)).statistic
    assert f"{expected:.3f}" in text
    assert len(tangle.data) == 5 and table != []


def test_image_source_not_yet_analysed_says_what_to_run(services, monkeypatch):
    from classmap.app.shell.images import ImageServices

    monkeypatch.setattr(ImageServices, "ready", lambda self, model, data: False)
    summary, *_rest, table = page.compare_logic(
        services, ("lenet-digits", "features", "ward", "digits"),
        ("lenet-digits", "cosine", "ward", "digits"), 9)
    assert "run the Samples page (or classmap export --data) first" in str(summary)
    assert table == []


@pytest.mark.parametrize("source", [
    ("lenet-digits", "confidence", "average", "/etc"),
    ("lenet-digits", "confidence", "ward", "digits"),
])
def test_bad_image_sources_are_refused(services, source):
    summary, *_rest, table = page.compare_logic(
        services, source, ("lenet-digits", "cosine", "ward", "digits"), 9)
    assert table == [] and "/etc" not in str(summary)
    assert "configured data set" in str(summary) or "ward needs Euclidean" in str(summary)


# -- the comparison as a background job ---------------------------------------------------------

LITE_A = ("lite0-imagenet", "cosine", "ward", "digits")
LITE_B = ("lite0-imagenet", "wordnet", "average", "digits")


def forget(services, a, b, count):
    """Drop the comparison from the session's result cache (an earlier test stored it)."""
    services.cache.delete(page.cache_key(services, a, b, count))


def test_compare_button_starts_a_job_that_reports_progress_and_its_result(services, lite0_view):
    forget(services, LITE_A, LITE_B, 9)
    summary, *shown, status, job = page.request_compare_logic(services, LITE_A, LITE_B, 9)
    assert shown == [page.no_update] * 3  # the results stay as they are until the job ends
    assert status["state"] == "pending" and status["job"] == job["id"]
    assert job["model"] == "lite0-imagenet" and job["permutations"] == 9
    # Retry rebuilds the same request (with a fresh id) from the status key alone.
    again = page.compare_job(status["key"])
    assert (again["a"], again["b"], again["permutations"]) == (job["a"], job["b"], 9)
    assert again["id"] != job["id"]

    reports = []
    *results, done = page.compare_job_logic(services, reports.append, job)
    assert done == {"key": status["key"], "state": "ready", "message": ""}
    direct = page.compare_logic(services, LITE_A, LITE_B, 9)
    assert str(results[0]) == str(direct[0])  # the same measures as computed in the request
    labels = [label for _percent, label in reports]
    assert any("source A" in label for label in labels)
    assert any("9 Mantel permutations" in label for label in labels)
    assert reports[-1][0] == 100


def test_a_computed_comparison_is_answered_from_the_cache_the_next_time(services, lite0_view):
    forget(services, LITE_A, LITE_B, 11)
    *_, job = page.request_compare_logic(services, LITE_A, LITE_B, 11)
    *results, done = page.compare_job_logic(services, lambda _r: None, job)
    assert done["state"] == "ready"
    *again, status, no_job = page.request_compare_logic(services, LITE_A, LITE_B, 11)
    assert no_job is page.no_update  # no job: nothing is computed
    assert status == {"key": done["key"], "state": "ready", "message": ""}
    assert str(again[0]) == str(results[0]) and str(again[3]) == str(results[3])
    assert again[1].to_json() == results[1].to_json()  # B_k
    assert again[2].to_json() == results[2].to_json()  # tanglegram
    # another permutation count is another comparison: a job
    forget(services, LITE_A, LITE_B, 12)
    *_, status, job = page.request_compare_logic(services, LITE_A, LITE_B, 12)
    assert status["state"] == "pending" and job["permutations"] == 12


def test_image_sources_are_not_cached(services):
    image = ("lenet-digits", "features", "average", "digits")
    assert page.cache_key(services, image, ("lenet-digits", "cosine", "ward"), 9) is None
    assert page.cache_key(services, ("lenet-digits", "cosine", "ward"),
                          ("lenet-digits", "euclidean", "ward"), 9) is not None


def test_a_source_that_fails_in_the_job_ends_it_with_its_error(services):
    *_, status, job = page.request_compare_logic(
        services, ("small", "cosine", "ward"), ("lite0-imagenet", "cosine", "ward"), 9)
    summary, bk, _tangle, table, done = page.compare_job_logic(services, lambda _r: None, job)
    assert done["state"] == "error" and "different class sets" in done["message"]
    assert table == [] and "different class sets" in str(summary)


def test_a_viewer_is_told_to_ask_an_operator_and_no_job_starts(services):
    import flask

    from classmap.app.hosting.identity import Identity

    forget(services, LITE_A, LITE_B, 9)
    with flask.Flask(__name__).test_request_context("/"):
        flask.g.classmap_identity = Identity("vera", "viewer")
        summary, *_, status, job = page.request_compare_logic(services, LITE_A, LITE_B, 9)
    assert status["state"] == "error" and "operator role" in status["message"]
    assert job is page.no_update and "operator role" in str(summary)


def test_a_viewer_sees_a_comparison_the_cache_holds(services, lite0_view):
    import flask

    from classmap.app.hosting.identity import Identity

    page.compare_logic(services, LITE_A, LITE_B, 13)  # computed (and stored) by an operator
    with flask.Flask(__name__).test_request_context("/"):
        flask.g.classmap_identity = Identity("vera", "viewer")
        summary, *_, status, job = page.request_compare_logic(services, LITE_A, LITE_B, 13)
    assert status["state"] == "ready" and job is page.no_update
    assert "Spearman" in str(summary)


def test_a_bad_choice_is_refused_before_any_job(services):
    summary, *_, status, job = page.request_compare_logic(
        services, ("lite0-imagenet", "wordnet", "ward"), LITE_B, 9)
    assert "ward needs Euclidean geometry" in str(summary)
    assert status is page.no_update and job is page.no_update


def test_bk_axes_leave_their_corner_and_the_legend_clear():
    """The B_k chart's first labels ("2" on k, "0" on B_k) met in the corner at 1280 px,
    and the legend sat on the "1": the axes now start just before k = 2 and below 0, and
    the legend stands above the plot."""
    levels = np.array([2, 3, 5, 10, 100, 999])
    figure = figures.bk_figure(levels, np.linspace(0.9, 0.0, 6), np.linspace(0.7, 0.0, 6))
    low, high = figure.layout.xaxis.range
    assert figure.layout.xaxis.type == "log"
    assert low < np.log10(2) and high > np.log10(999)
    assert figure.layout.yaxis.range[0] < 0 < 1 < figure.layout.yaxis.range[1]
    assert figure.layout.legend.yanchor == "bottom" and figure.layout.legend.y >= 1
