"""Extract the English->Spanish verse pairs shipped in llmbook/data from the Debian SWORD modules.

Sources: the World English Bible (`engWEB2015eb`, Debian `sword-text-web`) and the Reina-Valera
1909 (`spaRV1909eb`, Debian `sword-text-sparv`), both public domain, read with PyPI `pysword`.

    python tools/extract_bible.py            # rewrite bible_en_es.tsv.gz, its manifest, enes_spm.npz
    python tools/extract_bible.py --check    # compare a fresh extraction with the shipped file

Rules, in order (each was measured on these modules; the counts are in the manifest):
1. Text. Verse 0 of a chapter (chapter and section headings, Song of Songs speaker labels) is not
   verse text and is skipped; so is anything after the end-of-book marker (the WEB appends its
   glossary to Revelation 22:21). Markup is removed with pysword's OSIS cleaner (footnotes,
   alternative readings and headings with their content), leftover tags, HTML entities, square
   brackets, pilcrows and verse-number prefixes are dropped, whitespace is collapsed, and the text is
   put in Unicode NFC. The RV1909 spells its time's accents ("á Dios"); they are kept. Its verse 1
   opens with capitals ("EN el principio", "Y DESPUÉS movió"); the first run of capitalised words
   of verse 1 is put in lower case, with a capital where it starts a sentence or is a name of God.
2. Psalm titles. The RV1909 prints a psalm's title inside verse 1; the WEB marks it as a heading
   (<title type="psalm">), which the cleaner would drop. The WEB title is put back in front of
   verse 1 so both sides say the same thing.
3. Subscriptions. The RV1909 ends 14 epistles (Romans to Hebrews) with the traditional
   subscription ("Fué escrita de Corinto ...") after the final "Amén."; it is not in the WEB and is
   cut.
4. Pairing. Only the 66 books both modules hold; a pair is one (book, chapter, verse) that is
   non-empty on both sides (the WEB's deuterocanon, and verses one tradition omits, e.g. Acts 8:37,
   are unpaired). The verses just before and after a verse that only one side has are dropped too:
   the other side usually merged the missing text into one of them (the RV1909's Job 35:15 holds
   35:16; the WEB's Romans 14:23 holds 16:25-27).
5. Versification. Where the RV1909 follows the Hebrew division (e.g. Numbers 13, Jonah 2,
   1 Chronicles 21 from verse 16), its verses are shifted against the WEB's until the end of the
   chapter, so same-numbered verses do not correspond. A verse is called shifted when, over it and
   its `SHIFT_WINDOW` neighbours on each side, the median |log(characters EN / characters ES) -
   median| is above 2 robust standard deviations at offset 0 and `SHIFT_MARGIN` times what it is at
   some offset of 1 to 6 verses (Job 40 is 5 verses off). A chapter with `MAX_SHIFTED` or more
   shifted verses is dropped whole (inside a shifted run, lists of names have even lengths and hide
   the shift); a lone shifted verse is dropped. This is conservative: it also drops a few aligned
   chapters of even-length verses (Psalm 148). The words' Strong's numbers, which both modules
   carry, were tried as a content signal and do not work: where the numbering differs, the WEB's
   tags follow the Hebrew verses, so they agree with the shifted RV1909 (Numbers 30, Jonah 2).
6. Single verses. A pair is dropped when its log character-length ratio lies more than
   `MAX_RATIO_Z` robust standard deviations (1.4826 x MAD) from the median over all pairs and the
   lengths differ by more than `MIN_EXCESS` characters beyond the typical ratio: such a pair holds
   a merged or split verse or a textual variant (e.g. Acts 9:6). Short verses are spared: "You shall
   not murder." / "No matarás." is a ratio of 2 but a fine pair.
No length limit is applied here: the loader's `max_words` (30 by default) chooses it.

7. Repeats. A validation or test verse whose English or Spanish text occurs verbatim in a training
   verse ("Yahweh spoke to Moses, saying,", parallel passages in Kings and Chronicles) is dropped,
   so no held-out sentence is seen in training.

Split: by whole chapters, from SHA-256("book chapter"): < 90 % train, < 95 % validation, the rest
test, so no verse of a held-out chapter is in training.
"""
from __future__ import annotations

import argparse
import functools
import gzip
import hashlib
import html
import json
import math
import re
import statistics
import subprocess
import sys
import time
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from llmbook.data import bible  # noqa: E402

SWORD_ROOT = Path("/usr/share/sword")
MODULES = {"en": "engWEB2015eb", "es": "spaRV1909eb"}
APT_HINT = ("install the Debian packages: `sudo apt-get install sword-text-web sword-text-sparv` "
            "(the course's `make setup` does it) and the PyPI package `pysword==0.2.8`")
SHIFT_WINDOW = 3            # rule 5 compares offsets over a verse and its 3 neighbours on each side
SHIFT_MARGIN = 1.5          # ... and calls it shifted when an offset in SHIFTS fits 1.5 times better
SHIFTS = [d for d in range(-6, 7) if d]   # Job 40 is 5 verses off (the RV1909 holds 40:1-5 in 39:30)
MAX_RATIO_Z = 4.0           # rule 6: robust z of the log character ratio beyond which a pair is dropped
MIN_EXCESS = 40             # ... if the length difference is also more than 40 characters
MAX_SHIFTED = 3             # rule 5: a chapter with this many shifted verses is dropped whole
# SentencePiece BPE pieces per language, specials included. Measured on held-out verses: 2k / 4k / 8k
# pieces give 1.49 / 1.34 / 1.26 pieces per English word (Spanish 1.61 / 1.45 / 1.34); 8k would double the
# embedding and output layers to shorten sequences by 7 %. One model per side.
SPM_VOCAB = dict(en=4000, es=4000)

_BOOK_END = re.compile(r'<div[^>]*\btype="book"[^>]*\beID=|<div[^>]*\beID=[^>]*\btype="book"')
_PSALM_TITLE = re.compile(r'<title[^>]*type="psalm"[^>]*>(.*?)</title>', re.S)
_TAG = re.compile(r"<[^>]*>")
_NOTE = re.compile(r"<note\b.*?</note>", re.S)
_CLITICS = "lo|la|le|los|las|les|me|te|se|nos|os"     # "<w>sáca</w><transChange>lo" is one word: sácalo
_JOINED = re.compile(rf"</(w|transChange)>(?=<(?:w|transChange)\b[^>]*>(?!(?:{_CLITICS})<)\w)")
_CAPS_RUN = re.compile(r"\b[A-ZÁÉÍÓÚÑÜ]{2,}(?: [A-ZÁÉÍÓÚÑÜ]{2,})*\b")
_NAMES = {"JEHOVÁ", "DIOS", "JESÚS", "JESUS", "SEÑOR", "CRISTO"}
_SUBSCRIPTION = re.compile(r"(Amén\.)\s+[^.]*\b(?:escrita|enviada)\b.*$", re.S | re.I)


class _Cleaner:
    """pysword's OSISCleaner, skipping its ~90 patterns whose literal start is not in the text (same output, ~8x faster)."""

    def __init__(self):
        from pysword.cleaner import OSISCleaner
        self.osis = OSISCleaner()
        self.patterns = [(rx, re.split(r"[.\[]", rx.pattern, maxsplit=1)[0].lower())
                         for rx in self.osis._OSISCleaner__remove_tags_regexes]

    def clean(self, text: str) -> str:
        text = re.sub(r'(<[^\>]+type="x-br"[^\>]+\>)', r'\1 ', text)       # as OSISCleaner.clean
        lower = text.lower()
        for rx, start in self.patterns:
            if start in lower:
                text = rx.sub("", text)
                lower = text.lower()
        return text


def _cleaner():
    return _Cleaner()


def clean(raw: str, lang: str, cleaner) -> str:
    """Plain NFC text of one verse's OSIS markup (rules 1-2 of the module docstring)."""
    end = _BOOK_END.search(raw)
    if end:
        raw = raw[:end.start()]                       # e.g. the WEB glossary after Revelation 22:21
    title = ""
    if lang == "en":
        found = _PSALM_TITLE.search(raw)
        if found:
            title = found.group(1) + " "
    raw = _NOTE.sub(" ", raw)                         # a footnote between two words leaves a space
    raw = _JOINED.sub(r"</\1> ", raw)                 # "<w>engendró</w><transChange>un" -> two words
    text = title + cleaner.clean(raw)
    text = html.unescape(_TAG.sub(" ", text))
    text = re.sub(r"[\[\]¶]", " ", text)
    text = re.sub(r"^\s*\d+\s+", "", text)            # a verse number printed as a prefix
    text = " ".join(text.split())
    text = re.sub(r" ([,.;:!?)])", r"\1", text)       # space left before punctuation by removed markup
    return unicodedata.normalize("NFC", text)


def undo_drop_cap(text: str) -> str:
    """The RV1909's chapter-opening capitals in lower case: 'EN el principio' -> 'En el principio'."""
    run = _CAPS_RUN.search(text)
    if not run:
        return text
    words = run.group(0).lower().split()
    starts = run.start() == 0 or re.search(r"(^|[.:!?¡¿]\s*)[¡¿]?$", text[:run.start()])
    if starts or words[0].upper() in _NAMES:
        words[0] = words[0][0].upper() + words[0][1:]
    return text[:run.start()] + " ".join(words) + text[run.end():]


def read_module(key: str, sword_root: Path = SWORD_ROOT) -> tuple[dict, dict]:
    """{(book, chapter, verse): raw OSIS text} of one module (verses >= 1), and its .conf fields."""
    try:
        from pysword.modules import SwordModules
    except ImportError as e:
        raise ImportError(f"tools/extract_bible.py needs pysword: {APT_HINT}") from e
    conf = Path(sword_root) / "mods.d" / f"{key}.conf"
    if not conf.exists():
        raise FileNotFoundError(f"SWORD module {key} not found ({conf} missing): {APT_HINT}")
    modules = SwordModules(str(sword_root))
    info = modules.parse_modules()[key]
    bible_ = modules.get_bible_from_module(key)
    # pysword decompresses the whole book for every verse; keep the last block instead (~50x faster).
    bible_._decompressed_text = functools.lru_cache(maxsize=2)(bible_._decompressed_text)
    structure = bible_.get_structure()
    verses = {}
    for testament, books in structure.get_books().items():
        for book in books:
            for c, n in enumerate(book.chapter_lengths, 1):
                idx = structure.ref_to_indicies(books=book.osis_name, chapters=c)[testament]
                for v, i in zip(range(1, n + 1), idx):
                    verses[(book.osis_name, c, v)] = bible_._text_for_index(testament, i) or ""
    return verses, info


def _log_ratio(en: str, es: str) -> float:
    return math.log(len(en) / len(es))


def align(en: dict, es: dict) -> tuple[list[tuple[str, int, int, str, str]], dict]:
    """Verse pairs that correspond (rules 3-6), in canonical order, and what each rule dropped."""
    order = {k: i for i, k in enumerate(es)}                 # the RV1909's (KJV) book order
    books = {k[0] for k in es}
    last = {}
    for k in es:
        if es[k]:
            last[k[0]] = max(last.get(k[0], k), k)
    es = dict(es)
    n_sub = 0
    for k in last.values():                                  # rule 3
        cut = _SUBSCRIPTION.sub(r"\1", es[k])
        n_sub += cut != es[k]
        es[k] = cut
    lone = [k for k in order if bool(en.get(k)) != bool(es.get(k))] + [k for k in en if en[k] and k[0] in books
                                                                      and not es.get(k)]
    beside_lone = {(b, c, v + d) for b, c, v in lone for d in (-1, 1)}
    both = [k for k in order if en.get(k) and es.get(k)]
    n_beside = sum(k in beside_lone for k in both)
    both = [k for k in both if k not in beside_lone]       # rule 4: the neighbour may hold the missing text
    stats = dict(en_verses=sum(1 for t in en.values() if t), es_verses=sum(1 for t in es.values() if t),
                 en_books_unpaired=sorted({k[0] for k in en if en[k]} - books),
                 only_en=sum(1 for k in en if en[k] and k[0] in books and not es.get(k)),
                 only_es=sum(1 for k in es if es[k] and not en.get(k)), subscriptions_cut=n_sub,
                 beside_unpaired=n_beside, paired=len(both))
    ratios = {k: _log_ratio(en[k], es[k]) for k in both}
    mid = statistics.median(ratios.values())
    sd = 1.4826 * statistics.median(abs(r - mid) for r in ratios.values())
    chapters: dict[tuple[str, int], list] = {}
    for k in both:
        chapters.setdefault(k[:2], []).append(k)
    shifted, outliers, pairs, dropped_chapters = [], [], [], []
    for (b, c), keys in chapters.items():
        def cost(window, d):                                 # rule 5: median misfit at offset d
            errs = [abs(_log_ratio(en[j], es[(b, c, j[2] + d)]) - mid) for j in window if es.get((b, c, j[2] + d))]
            return statistics.median(errs) if errs else math.inf
        moved = []
        for i, k in enumerate(keys):
            window = keys[max(0, i - SHIFT_WINDOW):i + SHIFT_WINDOW + 1]
            here = cost(window, 0)
            if here > 2 * sd and SHIFT_MARGIN * min(cost(window, d) for d in SHIFTS) < here:
                moved.append(k)
        shifted += [f"{b} {c}:{k[2]}" for k in moved]
        if len(moved) >= MAX_SHIFTED:
            dropped_chapters.append(f"{b} {c}")
            continue
        for k in keys:
            if k in moved:
                continue
            excess = abs(len(en[k]) - len(es[k]) * math.exp(mid))
            if abs(ratios[k] - mid) > MAX_RATIO_Z * sd and excess > MIN_EXCESS:   # rule 6
                outliers.append(f"{b} {c}:{k[2]}")
                continue
            pairs.append((b, c, k[2], en[k], es[k]))
    n_dropped = sum(len(chapters[(b, int(c))]) for b, c in (x.rsplit(" ", 1) for x in dropped_chapters))
    stats.update(log_ratio_median=round(mid, 4), log_ratio_robust_sd=round(sd, 4), shifted=len(shifted),
                 shifted_verses=shifted, dropped_chapters=dropped_chapters, dropped_chapter_verses=n_dropped, ratio_outliers=len(outliers), ratio_outlier_verses=outliers,
                 kept=len(pairs))
    return pairs, stats


def _deb_version(package: str) -> str:
    """The installed Debian package's version, or 'unknown'."""
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True)
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def extract(sword_root: Path = SWORD_ROOT) -> tuple[list[tuple[str, str, int, int, str, str]], dict]:
    """Every aligned, cleaned pair with its split: (split, book, chapter, verse, en, es), and the statistics."""
    cleaner = _cleaner()
    texts, infos = {}, {}
    for lang, key in MODULES.items():
        raw, infos[lang] = read_module(key, sword_root)
        texts[lang] = {k: clean(t, lang, cleaner) if t.strip() else "" for k, t in raw.items()}
    texts["es"] = {k: undo_drop_cap(t) if k[2] == 1 else t for k, t in texts["es"].items()}
    pairs, stats = align(texts["en"], texts["es"])
    rows = [(bible.chapter_split(b, c), b, c, v, e, s) for b, c, v, e, s in pairs]
    train_en = {r[4] for r in rows if r[0] == "train"}
    train_es = {r[5] for r in rows if r[0] == "train"}
    repeats = {r for r in rows if r[0] != "train" and (r[4] in train_en or r[5] in train_es)}   # rule 7
    rows = [r for r in rows if r not in repeats]
    stats["held_out_repeats_dropped"] = len(repeats)
    stats["kept"] = len(rows)
    sources = {lang: {f: infos[lang].get(f.lower(), "") for f in
                      ("Description", "Version", "SwordVersionDate", "Versification", "DistributionLicense",
                       "Copyright", "CopyrightNotes")}
               | {"module": MODULES[lang], "debian_package": pkg, "debian_version": _deb_version(pkg)}
               for lang, pkg in (("en", "sword-text-web"), ("es", "sword-text-sparv"))}
    return rows, dict(sources=sources, extraction=stats)


def to_tsv(rows) -> bytes:
    """The rows as UTF-8 TSV with a header line."""
    lines = ["\t".join(bible.COLUMNS)] + ["\t".join(map(str, r)) for r in rows]
    return ("\n".join(lines) + "\n").encode("utf-8")


def train_tokenizers(path: Path, train_pairs) -> dict:
    """SentencePiece BPE per language on the train split's pairs (loader's default length limit)."""
    from llmbook.data.seq2seq import SubwordTokenizer, save_tokenizers
    en = SubwordTokenizer.train([e for e, _ in train_pairs], SPM_VOCAB["en"])
    es = SubwordTokenizer.train([s for _, s in train_pairs], SPM_VOCAB["es"])
    save_tokenizers(path, en=en, es=es)
    return dict(file=path.name, vocab_size=SPM_VOCAB, checksum=dict(en=en.checksum, es=es.checksum),
                trained_on=f"train split, max_words={bible.MAX_WORDS}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="only compare a fresh extraction with the shipped file")
    ap.add_argument("--no-tokenizers", action="store_true", help="do not retrain enes_spm.npz")
    args = ap.parse_args()
    t0 = time.perf_counter()
    rows, meta = extract()
    data = to_tsv(rows)
    seconds = time.perf_counter() - t0
    print(f"extracted {len(rows)} pairs in {seconds:.1f} s")
    if args.check:
        shipped = gzip.decompress(bible.DATA_FILE.read_bytes())
        same = shipped == data
        print("shipped file equals the extraction" if same else "shipped file DIFFERS from the extraction")
        sys.exit(0 if same else 1)
    gz = gzip.compress(data, compresslevel=9, mtime=0)
    bible.DATA_FILE.write_bytes(gz)
    manifest = dict(file=bible.DATA_FILE.name, sha256=hashlib.sha256(gz).hexdigest(),
                    tsv_sha256=hashlib.sha256(data).hexdigest(), columns=list(bible.COLUMNS),
                    split_rule=bible.SPLIT_RULE, **meta)
    bible.MANIFEST_FILE.write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    bible.verses.cache_clear()
    manifest.update(bible.split_summary())
    if not args.no_tokenizers:
        manifest["tokenizers"] = train_tokenizers(ROOT / "llmbook" / "checkpoints" / "enes_spm.npz",
                                                  bible.load_bible_pairs("train"))
    bible.MANIFEST_FILE.write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    e = manifest["extraction"]
    print(f"wrote {bible.DATA_FILE.name}: {e['kept']} of {e['paired']} paired verses kept "
          f"({e['dropped_chapter_verses']} in {len(e['dropped_chapters'])} shifted chapters, "
          f"{e['ratio_outliers']} length outliers, {e['held_out_repeats_dropped']} held-out repeats dropped)")
    print(f"verses per split {manifest['verses']}; pairs of <= {bible.MAX_WORDS} words {manifest['pairs']}; "
          f"split checksum {manifest['split_checksum']}")


if __name__ == "__main__":
    main()
