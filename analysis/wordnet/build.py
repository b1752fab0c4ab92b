"""Derive the shipped WordNet file from WordNet 3.0's ``data.noun``.

Usage::

    python -m classmap.analysis.wordnet.build [--wordnet /usr/share/wordnet] [--out FILE]

Reads the noun database (Debian's ``wordnet-base`` installs it in
``/usr/share/wordnet``), keeps the synsets of every ImageNet class set timm knows
(ids from ``timm.data.ImageNetInfo``, offline) plus all their ancestors along the
hypernym pointers ``@`` and instance-hypernym pointers ``@i``, and writes one line per
synset — ``offset<TAB>first lemma<TAB>parent offsets (comma-separated)`` — sorted by
offset, after a ``#`` header carrying WordNet's licence notice (taken from the
database's own header). The gzip stream has no timestamp or name, so a rerun on the
same WordNet and timm gives the same bytes.
"""

from __future__ import annotations

import argparse
import gzip
import io
from dataclasses import dataclass
from pathlib import Path

DEFAULT_WORDNET = Path("/usr/share/wordnet")
SHIPPED = Path(__file__).with_name("imagenet_wordnet.tsv.gz")
# timm's ImageNet subsets (timm.data.imagenet_info); "imagenet-21k" is 21k-goog.
IMAGENET_SUBSETS = ("imagenet-1k", "imagenet-12k", "imagenet-22k", "imagenet-21k-goog",
                    "imagenet-21k-miil", "imagenet-22k-ms")
HYPERNYM_POINTERS = ("@", "@i")


@dataclass(frozen=True)
class Synset:
    """One noun synset: 8-digit offset, first lemma (spaces for ``_``), parent offsets."""

    offset: str
    name: str
    parents: tuple[str, ...]


def parse_data_noun(text: str) -> tuple[dict[str, Synset], list[str]]:
    """Every synset of a ``data.noun`` text, and the licence lines of its header.

    A data line is ``offset lex_filenum ss_type w_cnt(hex) [word lex_id]… p_cnt(dec)
    [symbol offset pos source/target]… | gloss``; header lines start with two spaces.
    """
    synsets: dict[str, Synset] = {}
    licence: list[str] = []
    for line in text.splitlines():
        if line.startswith("  "):
            licence.append(line.strip().split(" ", 1)[1].rstrip() if " " in line.strip() else "")
            continue
        fields = line.split(" | ", 1)[0].split()
        if not fields:
            continue
        offset, words = fields[0], int(fields[3], 16)
        name = fields[4].replace("_", " ")
        at = 4 + 2 * words
        pointers = int(fields[at])
        parents = []
        for k in range(pointers):
            symbol, target, pos = fields[at + 1 + 4 * k : at + 4 + 4 * k]
            if symbol in HYPERNYM_POINTERS and pos == "n":
                parents.append(target)
        synsets[offset] = Synset(offset, name, tuple(parents))
    return synsets, licence


def imagenet_offsets() -> tuple[set[str], dict[str, int]]:
    """Offsets of every class of timm's ImageNet subsets; per-subset class counts."""
    from timm.data import ImageNetInfo

    offsets: set[str] = set()
    counts: dict[str, int] = {}
    for subset in IMAGENET_SUBSETS:
        ids = ImageNetInfo(subset).label_names()
        counts[subset] = len(ids)
        offsets.update(i[1:] for i in ids if i.startswith("n"))
    return offsets, counts


def closure(synsets: dict[str, Synset], seeds: set[str]) -> set[str]:
    """``seeds`` found in ``synsets`` plus all their ancestors."""
    kept: set[str] = set()
    stack = [s for s in seeds if s in synsets]
    while stack:
        offset = stack.pop()
        if offset in kept:
            continue
        kept.add(offset)
        stack.extend(synsets[offset].parents)
    return kept


def render(wordnet: Path = DEFAULT_WORDNET) -> bytes:
    """The shipped file's bytes (gzip without timestamp) from ``wordnet/data.noun``."""
    synsets, licence = parse_data_noun((wordnet / "data.noun").read_text(encoding="latin-1"))
    seeds, counts = imagenet_offsets()
    kept = closure(synsets, seeds)
    missing = sorted(seeds - set(synsets))
    lines = ["# WordNet 3.0 hypernym graph (@ and @i pointers) of the ImageNet class sets timm "
             "knows, with all ancestors.",
             "# Derived by classmap.analysis.wordnet.build from WordNet 3.0 data.noun.",
             "# Class sets: " + ", ".join(f"{k} ({v})" for k, v in counts.items()) + ".",
             f"# Synsets: {len(kept)}; class ids not in WordNet 3.0: {len(missing)}"
             + (f" ({' '.join('n' + m for m in missing[:20])})" if missing else "") + ".",
             "# Columns: offset<TAB>first lemma<TAB>hypernym offsets, comma-separated.",
             "#",
             "# WordNet licence (from the database's header):",
             *(f"# {line}".rstrip() for line in licence)]
    for offset in sorted(kept):
        synset = synsets[offset]
        lines.append(f"{offset}\t{synset.name}\t{','.join(synset.parents)}")
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=9) as out:
        out.write(("\n".join(lines) + "\n").encode("utf-8"))
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m classmap.analysis.wordnet.build",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--wordnet", type=Path, default=DEFAULT_WORDNET,
                        help="folder holding WordNet 3.0's data.noun (default %(default)s)")
    parser.add_argument("--out", type=Path, default=SHIPPED, help="default: the shipped file")
    args = parser.parse_args(argv)
    data = render(args.wordnet)
    args.out.write_bytes(data)
    print(f"wrote {args.out} ({len(data)} bytes)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
