"""The view archives' CSV tables (analysis/exports/view_archive.py: csv_bytes, matrix_csv):
read back with the csv module and float() they give the very numbers written."""

from __future__ import annotations

import csv
import io
import math

import numpy as np
import pytest

from classmap.analysis.errors import ClassmapError
from classmap.analysis.exports.view_archive import csv_bytes, matrix_csv


def read(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"))))


def test_floats_read_back_exactly_and_undefined_is_empty():
    values = np.random.default_rng(0).normal(size=50) * 10.0 ** np.arange(-25, 25)
    table = read(csv_bytes(["x"], ([v] for v in values)))
    assert [float(row[0]) for row in table[1:]] == values.tolist()
    table = read(csv_bytes(["a", "b", "c"], [[math.nan, None, np.float32(0.1)]]))
    assert table[1][:2] == ["", ""] and float(table[1][2]) == float(np.float32(0.1))


def test_text_cells_are_spreadsheet_safe_and_ints_stay_ints():
    table = read(csv_bytes(["name", "n", "ok"], [["=cmd()", np.int64(3), True],
                                                 ["+-", 4, False], ["a, b", 5, None]]))
    assert table[1] == ["'=cmd()", "3", "true"]
    assert table[2] == ["'+-", "4", "false"]
    assert table[3] == ["a, b", "5", ""]


def test_a_row_of_the_wrong_length_is_refused_in_one_line():
    with pytest.raises(ClassmapError, match="row 2 of a view's table has 1 cells for 2 columns"):
        csv_bytes(["a", "b"], [[1, 2], [3]])


def test_matrix_csv_labels_rows_and_columns():
    matrix = np.arange(6, dtype=np.float64).reshape(2, 3) / 7
    table = read(matrix_csv("true\\pred", ["r0", "r1"], ["c0", "c1", "c2"], matrix))
    assert table[0] == ["true\\pred", "c0", "c1", "c2"]
    assert [row[0] for row in table[1:]] == ["r0", "r1"]
    np.testing.assert_array_equal([[float(v) for v in row[1:]] for row in table[1:]], matrix)
    with pytest.raises(ClassmapError, match="does not fit 3 row and 3 column names"):
        matrix_csv("x", ["a", "b", "c"], ["c0", "c1", "c2"], matrix)
