#!/usr/bin/env python3
"""Writes the CCR fixtures in this folder (run it from here). Everything is synthetic."""
import os, re
def med(oid, name, codes=(), brand=None, brand_codes=(), strengths=(), form="Tablet", status="Active",
        dates=(), directions=(), instructions=(), p=""):
    t = lambda n: p + n
    out = [f"<{t('Medication')}>", f"<{t('CCRDataObjectID')}>{oid}</{t('CCRDataObjectID')}>"]
    for typ, val in dates:
        out.append(f"<{t('DateTime')}><{t('Type')}><{t('Text')}>{typ}</{t('Text')}></{t('Type')}><{t('ExactDateTime')}>{val}</{t('ExactDateTime')}></{t('DateTime')}>")
    out.append(f"<{t('Type')}><{t('Text')}>Medication</{t('Text')}></{t('Type')}>")
    if status: out.append(f"<{t('Status')}><{t('Text')}>{status}</{t('Text')}></{t('Status')}>")
    prod = [f"<{t('Product')}>"]
    def codexml(cs):
        return "".join(f"<{t('Code')}><{t('Value')}>{v}</{t('Value')}><{t('CodingSystem')}>{s}</{t('CodingSystem')}></{t('Code')}>" for s, v in cs)
    if name is not None:
        prod.append(f"<{t('ProductName')}><{t('Text')}>{name}</{t('Text')}>{codexml(codes)}</{t('ProductName')}>")
    if brand is not None or brand_codes:
        bt = f"<{t('Text')}>{brand}</{t('Text')}>" if brand else ""
        prod.append(f"<{t('BrandName')}>{bt}{codexml(brand_codes)}</{t('BrandName')}>")
    for v, u in strengths:
        prod.append(f"<{t('Strength')}><{t('Value')}>{v}</{t('Value')}><{t('Units')}><{t('Unit')}>{u}</{t('Unit')}></{t('Units')}></{t('Strength')}>")
    if form: prod.append(f"<{t('Form')}><{t('Text')}>{form}</{t('Text')}></{t('Form')}>")
    prod.append(f"</{t('Product')}>")
    out.append("\n      ".join(prod))
    if directions:
        d = [f"<{t('Directions')}>"]
        for desc, dose, unit, route, freq in directions:
            d.append(f"<{t('Direction')}><{t('Description')}><{t('Text')}>{desc}</{t('Text')}></{t('Description')}>"
                     f"<{t('Dose')}><{t('Value')}>{dose}</{t('Value')}><{t('Units')}><{t('Unit')}>{unit}</{t('Unit')}></{t('Units')}></{t('Dose')}>"
                     f"<{t('Route')}><{t('Text')}>{route}</{t('Text')}></{t('Route')}>"
                     f"<{t('Frequency')}><{t('Value')}>{freq}</{t('Value')}></{t('Frequency')}></{t('Direction')}>")
        d.append(f"</{t('Directions')}>")
        out.append("\n      ".join(d))
    for ins in instructions:
        out.append(f"<{t('PatientInstructions')}><{t('Instruction')}><{t('Text')}>{ins}</{t('Text')}></{t('Instruction')}></{t('PatientInstructions')}>")
    out.append(f"</{t('Medication')}>")
    return "\n    ".join(out)

def ccr(meds, patient="synthetic-1", p="", xmlns=' xmlns="urn:astm-org:CCR"', alerts="", oid="doc-1"):
    t = lambda n: p + n
    return (f"<{t('ContinuityOfCareRecord')}{xmlns}>\n"
            f"  <{t('CCRDocumentObjectID')}>{oid}</{t('CCRDocumentObjectID')}>\n"
            f"  <{t('Patient')}><{t('ActorID')}>{patient}</{t('ActorID')}></{t('Patient')}>\n"
            f"  <{t('Body')}>\n{alerts}"
            f"  <{t('Medications')}>\n    " + "\n    ".join(meds) + f"\n  </{t('Medications')}>\n"
            f"  </{t('Body')}>\n"
            f"  <{t('Actors')}><{t('Actor')}><{t('ActorObjectID')}>{patient}</{t('ActorObjectID')}></{t('Actor')}></{t('Actors')}>\n"
            f"</{t('ContinuityOfCareRecord')}>\n")

DECL = '<?xml version="1.0" encoding="UTF-8"?>\n'
def alert(code, p=""):
    t = lambda n: p + n
    return (f"  <{t('Alerts')}><{t('Alert')}><{t('CCRDataObjectID')}>AL1</{t('CCRDataObjectID')}>"
            f"<{t('Type')}><{t('Text')}>Allergy</{t('Text')}></{t('Type')}>"
            f"<{t('Agent')}><{t('Products')}><{t('Product')}><{t('Description')}><{t('Text')}>Allergen extract</{t('Text')}></{t('Description')}>"
            f"<{t('Product')}><{t('ProductName')}><{t('Text')}>Allergen extract</{t('Text')}>"
            f"<{t('Code')}><{t('Value')}>{code}</{t('Value')}><{t('CodingSystem')}>NDC</{t('CodingSystem')}></{t('Code')}>"
            f"</{t('ProductName')}></{t('Product')}></{t('Product')}></{t('Products')}></{t('Agent')}></{t('Alert')}></{t('Alerts')}>\n")

simple = lambda p="": med("M1", "Lisinopril 10 MG Oral Tablet", [("NDC", "00006010654")], strengths=[("10", "mg")],
    directions=[("Take 1 tablet by mouth once daily", "1", "tablet", "Oral", "QD")], dates=[("Start Date", "2024-01-02")], p=p)

files = {}
files["default-namespace.xml"] = DECL + ccr([simple()])
files["prefixed-namespace.xml"] = DECL + ccr([simple("ccr:")], p="ccr:", xmlns=' xmlns:ccr="urn:astm-org:CCR"')
files["no-namespace.xml"] = DECL + ccr([simple()], xmlns="")
one = ccr([simple()], patient="synthetic-feed-1", oid="feed-doc-1")
two = ccr([med("M9", "Metformin 500 MG Oral Tablet", [("NDC", "0087-6060-05")], strengths=[("500", "mg")])], patient="synthetic-feed-1", oid="feed-doc-2")
files["atom-feed-two-ccrs.xml"] = (DECL + '<feed xmlns="http://www.w3.org/2005/Atom">\n<title>Synthetic CCR feed</title>\n'
    f'<entry><id>urn:uuid:1</id><content type="application/xml">\n{one}</content></entry>\n'
    f'<entry><id>urn:uuid:2</id>\n{two}</entry>\n</feed>\n')
files["atom-entry.xml"] = DECL + f'<entry xmlns="http://www.w3.org/2005/Atom"><id>urn:uuid:3</id><content type="application/xml">\n{one}</content></entry>\n'
files["stylesheet-no-declaration.xml"] = '<?xml-stylesheet type="text/xsl" href="ccr.xsl"?>\n' + ccr([simple()])
files["comments-before-root.xml"] = DECL + "\n\n<!-- exported by a synthetic test system -->\n  <!-- second comment -->\n\n" + ccr([simple()])
files["bom-utf8.xml"] = "\ufeff" + DECL + ccr([simple()])
files["codes-on-brandname.xml"] = DECL + ccr([med("M1", None, brand="Glucophage", brand_codes=[("National Drug Code", "0087-6060-05")], strengths=[("500", "mg")])])
files["several-codes.xml"] = DECL + ccr([med("M1", "Metformin 500 MG Oral Tablet", [("NDC", "0087-6060-05"), ("RxNorm", "861007"), ("ndc", "00087606005")])])
files["combination-two-strengths.xml"] = DECL + ccr([med("M1", "Lisinopril 20 MG / Hydrochlorothiazide 12.5 MG Oral Tablet",
    [("RxNorm", "197886")], strengths=[("20", "mg"), ("12.5", "mg")])])
files["several-directions.xml"] = DECL + ccr([med("M1", "Prednisone 10 MG Oral Tablet", [("NDC", "0054-4741-25")],
    directions=[("Take 4 tablets by mouth daily for 3 days", "4", "tablet", "Oral", "daily"),
                ("Then take 2 tablets by mouth daily for 3 days", "2", "tablet", "Oral", "daily")],
    instructions=["Take with food"])])
files["alerts-ndc-allergen.xml"] = DECL + ccr([simple()], alerts=alert("76013O881M"))
files["no-drug.xml"] = DECL + ccr([med("M1", None, status="Active", form=None,
    directions=[("Take as directed", "1", "tablet", "Oral", "daily")])])
files["billion-laughs.xml"] = ('<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    ' <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">\n'
    ' <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">\n]>\n'
    '<ContinuityOfCareRecord xmlns="urn:astm-org:CCR"><Body><Medications><Medication><Product><ProductName><Text>&lol3;</Text></ProductName></Product></Medication></Medications></Body></ContinuityOfCareRecord>\n')
files["external-entity.xml"] = ('<?xml version="1.0"?>\n<!DOCTYPE ContinuityOfCareRecord [\n <!ENTITY xxe SYSTEM "file:///etc/passwd">\n]>\n'
    '<ContinuityOfCareRecord xmlns="urn:astm-org:CCR"><Body><Medications><Medication><Product><ProductName><Text>&xxe;</Text></ProductName></Product></Medication></Medications></Body></ContinuityOfCareRecord>\n')
files["cda-not-ccr.xml"] = DECL + ('<ClinicalDocument xmlns="urn:hl7-org:v3">\n  <typeId root="2.16.840.1.113883.1.3" extension="POCD_HD000040"/>\n'
    '  <title>Synthetic CCD</title>\n</ClinicalDocument>\n')
files["mismatched-tag.xml"] = DECL + ('<ContinuityOfCareRecord xmlns="urn:astm-org:CCR">\n  <Body>\n    <Medications>\n      <Medication>\n'
    '        <Status><Text>Active</Status></Text>\n      </Medication>\n    </Medications>\n  </Body>\n</ContinuityOfCareRecord>\n')

# demo: the six medications the demo walks through, plus an NDC-coded allergen
demo_meds = [
    med("MED-1", "Lisinopril 10 MG Oral Tablet", [("NDC", "00006010654")], brand="Prinivil", strengths=[("10", "mg")],
        dates=[("Start Date", "2023-03-01"), ("Prescription Date", "2023-02-27")],
        directions=[("Take 1 tablet by mouth once daily", "1", "tablet", "Oral", "once daily")]),
    med("MED-2", "Lisinopril 10 MG Oral Tablet", brand="Lisinopril (West-Ward)", brand_codes=[("National Drug Code", "0143-9714-01")],
        strengths=[("10", "mg")], dates=[("Started", "2024-05-10")],
        directions=[("Take 1 tablet by mouth once daily", "1", "tablet", "Oral", "once daily")]),
    med("MED-3", "Metformin Hydrochloride 500 MG Oral Tablet", [("ndc", "0087-6060-05"), ("RxNorm", "861007")], brand="Glucophage",
        strengths=[("500", "mg")], dates=[("Start Date", "2022-09-15")],
        directions=[("Take 1 tablet by mouth twice daily with meals", "1", "tablet", "Oral", "twice daily")]),
    med("MED-4", "Losartan Potassium 50 MG Oral Tablet", [("NDC", "68180-0513-01")], strengths=[("50", "mg")],
        dates=[("Start Date", "2024-01-08"), ("Date Prescribed", "2024-01-05")],
        directions=[("Take 1 tablet by mouth once daily", "1", "tablet", "Oral", "once daily")]),
    med("MED-5", "Amlodipine 5 MG Oral Tablet", [("RxNorm", "197361")], strengths=[("5", "mg")],
        dates=[("Start Date", "2021-11-02")],
        directions=[("Take 1 tablet by mouth once daily", "1", "tablet", "Oral", "once daily")]),
    med("MED-6", "Ibuprofen 800 MG Oral Tablet", [("NDC", "2501-813-16")], strengths=[("800", "mg")], status="Completed",
        dates=[("Start Date", "2023-06-01"), ("Stop Date", "2023-06-10")],
        directions=[("Take 1 tablet by mouth every 8 hours as needed for pain", "1", "tablet", "Oral", "every 8 hours")]),
]
files["demo.xml"] = DECL + ccr(demo_meds, patient="demo-ccr-1", alerts=alert("76013O881M"), oid="demo-doc-1")
# review: what the browser test walks through: a duplicate and an unmapped NDC, nothing else
files["review.xml"] = DECL + ccr([demo_meds[0], demo_meds[1], demo_meds[3]], patient="review-1", oid="review-doc-1")
# markup-name: a drug name carrying HTML markup (escaped in the XML), which review pages must show as text
files["markup-name.xml"] = DECL + ccr([med("M1", "Aspirin &lt;script&gt;alert(1)&lt;/script&gt; &lt;b&gt;81&lt;/b&gt; MG",
    [("NDC", "68180-0513-01")], strengths=[("81", "mg")])], patient="markup-1", oid="markup-doc-1")

from xml.dom import minidom
def pretty(text):
    # Indent every well-formed fixture the same way; what precedes the root
    # (declaration, stylesheet PI, comments, BOM) is kept as written.
    i = 0
    while True:
        i = text.index("<", i)
        if text[i + 1] not in "?!":
            break
        i += 1
    body = re.sub(r">\s+<", "><", text[i:].strip())
    return text[:i] + minidom.parseString(body).documentElement.toprettyxml(indent="  ")
HAND_WRITTEN = {"billion-laughs.xml", "external-entity.xml", "mismatched-tag.xml"}
for name, text in files.items():
    if name not in HAND_WRITTEN:
        text = pretty(text)
    with open(name, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
# Latin-1: a real 0xBD ("½") and 0xE9 ("é") byte in the direction text.
latin = ('<?xml version="1.0" encoding="ISO-8859-1"?>\n' + ccr([med("M1", "Metoprolol Tartrate 25 MG Oral Tablet", [("NDC", "0378-0018-01")],
    directions=[("Take ½ tablet by mouth twice daily (prescribed by Dr. Hélène Synthétique)", "0.5", "tablet", "Oral", "BID")])]))
with open("latin1-declared.xml", "wb") as f:
    f.write(pretty(latin).encode("latin-1"))
