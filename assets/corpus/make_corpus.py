"""Writes tiny.txt, the course's toy corpus: short sentences where *context* matters
(a colour named earlier must be repeated later: attention's job) and where *knowledge*
matters (which sport an athlete played, a country's capital: facts the model must
memorise, the MLP's job). Also writes word_kinds.json, the word lists by kind
(colour, athlete, capital city, ...) that course.mtp uses to label tokens. Run once; both
outputs are committed (and ship in the wheel) so nothing is generated at course run time:
    python assets/corpus/make_corpus.py
"""

import json
import random
from pathlib import Path

COLOURS = ["green", "blue", "red", "yellow", "white", "black", "golden", "purple"]
PLACES = ["forest", "lake", "garden", "house", "valley", "city"]
CONTEXT = [
    "the {c} {p} has {c} trees",
    "in the {c} {p} every flower is {c}",
    "we walked to the {c} {p} and saw {c} birds",
    "the {p} was {c} so the sky looked {c}",
]
ATHLETES = {
    "babe ruth": "baseball", "michael jordan": "basketball", "serena williams": "tennis",
    "lionel messi": "football", "tiger woods": "golf", "wayne gretzky": "hockey",
    "michael phelps": "swimming", "simone biles": "gymnastics", "roger federer": "tennis",
    "shaquille oneal": "basketball", "hank aaron": "baseball", "pele": "football",
}
FACTS = ["{a} played {s}", "everyone knows that {a} played {s}", "as a child {a} played {s}",
         "people say {a} played {s} very well"]
CAPITALS = {"france": "paris", "japan": "tokyo", "italy": "rome", "egypt": "cairo",
            "spain": "madrid", "peru": "lima", "kenya": "nairobi", "norway": "oslo"}
CAPITAL = ["the capital of {k} is {v}", "in {k} the capital is {v}"]
ANIMALS = {"cow": "moo", "dog": "woof", "cat": "meow", "duck": "quack", "sheep": "baa"}
SOUNDS = ["the {a} says {s}", "a happy {a} says {s}"]


def sentences(rng: random.Random, n: int) -> list[str]:
    out = []
    for _ in range(n):
        kind = rng.random()
        if kind < 0.4:
            out.append(rng.choice(CONTEXT).format(c=rng.choice(COLOURS), p=rng.choice(PLACES)))
        elif kind < 0.7:
            a = rng.choice(list(ATHLETES))
            out.append(rng.choice(FACTS).format(a=a, s=ATHLETES[a]))
        elif kind < 0.85:
            k = rng.choice(list(CAPITALS))
            out.append(rng.choice(CAPITAL).format(k=k, v=CAPITALS[k]))
        else:
            a = rng.choice(list(ANIMALS))
            out.append(rng.choice(SOUNDS).format(a=a, s=ANIMALS[a]))
    return out


def word_kinds() -> dict[str, list[str]]:
    """Each kind of corpus word and its words, sorted (course.mtp.token_type reads this)."""
    athletes = {w for a in ATHLETES for w in a.split()}
    kinds = {"colour": COLOURS, "place": PLACES, "athlete": athletes,
             "sport": ATHLETES.values(), "country": CAPITALS, "capital city": CAPITALS.values(),
             "animal": ANIMALS, "animal sound": ANIMALS.values()}
    return {kind: sorted(set(words)) for kind, words in kinds.items()}


if __name__ == "__main__":
    lines = sentences(random.Random(0), 3000)
    Path(__file__).with_name("tiny.txt").write_text("\n".join(lines) + "\n")
    Path(__file__).with_name("word_kinds.json").write_text(
        json.dumps(word_kinds(), indent=1) + "\n")
    print(f"{len(lines)} sentences, {len(set(' '.join(lines).split()))} distinct words")
