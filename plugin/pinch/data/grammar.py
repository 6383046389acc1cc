"""Sentence generator of the embedded corpus: a small template grammar.

Why a grammar: no corpus can be downloaded here, yet the default recipes need English
speech whose vocabulary (a few hundred words) a small CTC model learns in minutes and
whose test sentences are new combinations of seen words. Sentences are drawn from the
templates below (commands, numbers, names, short statements and questions); every
sentence is 3 to 8 words, about 1.5 to 3 s at espeak-ng's speaking rates.

Bump GENERATOR_VERSION whenever the templates, word lists, voices or synthesis settings
change: a cached corpus with another version is rebuilt.
"""
from __future__ import annotations

import random
import re

GENERATOR_VERSION = 4

WORDS = {
    "name": "alice bob carol david emma frank grace henry iris jack karen leo maria "
            "nina oscar paul quinn rosa sam tina victor wendy",
    "room": "kitchen bedroom bathroom garage garden office hallway basement attic "
            "library classroom lobby",
    "device": "light lamp heater fan radio television oven kettle printer camera "
              "speaker computer",
    "object": "door window box book cup bottle chair table bag key phone letter "
              "basket coat plate spoon",
    "color": "red blue green yellow black white orange purple brown gray pink silver",
    "size": "big small tall short heavy light old new",
    "place": "station market school park bank hospital airport beach museum "
             "bakery harbor stadium",
    "day": "monday tuesday wednesday thursday friday saturday sunday today tomorrow",
    "time": "morning afternoon evening night",
    "genre": "jazz rock classical country blues folk pop",
    "animal": "cat dog horse bird fish rabbit mouse tiger lion sheep goat duck",
    "animals": "cats dogs horses birds fish rabbits mice tigers lions sheep goats ducks",
    "food": "bread apples rice soup cheese coffee tea milk eggs butter honey pasta",
    "verb_past": "found moved painted carried cleaned opened closed dropped bought "
                 "sold fixed washed",
    "verb_go": "walked drove ran flew rode went",
    "adverb": "quickly slowly quietly carefully early late",
    "digit": "zero one two three four five six seven eight nine",
    "teen": "ten eleven twelve thirteen fourteen fifteen sixteen seventeen "
            "eighteen nineteen",
    "tens": "twenty thirty forty fifty sixty seventy eighty ninety",
    "weather": "sunny rainy cloudy windy cold warm foggy",
}
WORDS = {k: v.split() for k, v in WORDS.items()}

TEMPLATES = [
    "turn {onoff} the {room} {device}",
    "please turn {onoff} the {device}",
    "set a timer for {number} minutes",
    "set the alarm for {hour} {ampm}",
    "call {name} {day}",
    "send a message to {name}",
    "play some {genre} music",
    "play {genre} music in the {room}",
    "open the {color} {object}",
    "close the {object} in the {room}",
    "move the {size} {object} to the {room}",
    "put the {color} {object} on the table",
    "{name} {verb_past} the {color} {object}",
    "{name} {verb_past} the {size} {object} {day}",
    "{name} {verb_go} to the {place} {adverb}",
    "{name} and {name} {verb_go} to the {place}",
    "{name} bought {number} {food_plural}",
    "the {animal} is in the {room}",
    "the {size} {animal} {verb_go} {adverb}",
    "my phone number is {digit} {digit} {digit} {digit}",
    "the code is {digit} {digit} {digit}",
    "room {number} is on the left",
    "it will be {weather} on {weekday}",
    "is it {weather} this {time}",
    "where is the {color} {object}",
    "where did {name} put the {object}",
    "meet me at the {place} at {hour}",
    "we need {food} and {food}",
    "there are {number} {animals} in the {place}",
    "what time is it in the {time}",
]

_ONOFF = ["on", "off"]
_AMPM = ["in the morning", "in the evening", "tonight"]
_WEEKDAYS = WORDS["day"][:7]
_PLURAL_FOOD = ["apples", "eggs"]


def number_words(n: int) -> str:
    """English words for 0..99 (numbers are spoken, so the transcript spells them)."""
    if not 0 <= n <= 99:
        raise ValueError(f"number_words supports 0..99, got {n}")
    if n < 10:
        return WORDS["digit"][n]
    if n < 20:
        return WORDS["teen"][n - 10]
    tens = WORDS["tens"][n // 10 - 2]
    return tens if n % 10 == 0 else f"{tens} {WORDS['digit'][n % 10]}"


def _fill(slot: str, rng: random.Random) -> str:
    if slot == "number":
        return number_words(rng.randint(2, 99))
    if slot == "hour":
        return number_words(rng.randint(1, 12))
    if slot == "onoff":
        return rng.choice(_ONOFF)
    if slot == "ampm":
        return rng.choice(_AMPM)
    if slot == "weekday":
        return rng.choice(_WEEKDAYS)
    if slot == "food_plural":
        return rng.choice(_PLURAL_FOOD)
    return rng.choice(WORDS[slot])


def generate_sentence(rng: random.Random) -> str:
    """One sentence: a random template with each {slot} filled independently."""
    template = rng.choice(TEMPLATES)
    return re.sub(r"\{(\w+)\}", lambda m: _fill(m.group(1), rng), template)


def generate_sentences(n: int, rng: random.Random) -> list[str]:
    """n distinct sentences in draw order (deterministic for a given rng state)."""
    seen: set[str] = set()
    out: list[str] = []
    attempts = 0
    while len(out) < n:
        attempts += 1
        if attempts > 50 * n + 1000:
            raise ValueError(f"the grammar cannot produce {n} distinct sentences")
        s = generate_sentence(rng)
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


def vocabulary() -> set[str]:
    """Every word the grammar can emit (documented size: a few hundred words)."""
    words = {w for ws in WORDS.values() for w in ws}
    words |= {w for t in TEMPLATES for w in re.sub(r"\{\w+\}", " ", t).split()}
    words |= {w for p in _AMPM + _ONOFF for w in p.split()}
    return words
