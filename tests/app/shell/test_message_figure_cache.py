"""Message figures (loading, errors, nothing selected) are built once per message and
shared: each took ~20 ms of plotly's validation, six per Classes page load."""

from __future__ import annotations

import plotly.graph_objects as go

from classmap.app.shell import figures


def test_the_same_message_is_built_once_and_shared():
    first = figures.message_figure("Preparing the analysis… (cache test)", height=300)
    again = figures.message_figure("Preparing the analysis… (cache test)", height=300)
    assert again is first
    assert isinstance(first, go.Figure)
    assert first.layout.annotations[0].text == "Preparing the analysis… (cache test)"
    assert first.layout.height == 300
    other = figures.message_figure("Preparing the analysis… (cache test)", height=200)
    assert other is not first and other.layout.height == 200


def test_long_messages_are_still_wrapped_and_the_cache_is_bounded():
    text = "word " * 40
    figure = figures.message_figure(text, width=30)
    assert all(len(line) <= 30 for line in figure.layout.annotations[0].text.split("<br>"))
    for n in range(figures.message_figure.cache_info().maxsize + 10):
        figures.message_figure(f"message {n}")
    info = figures.message_figure.cache_info()
    assert info.currsize <= info.maxsize
