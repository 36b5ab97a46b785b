"""Words about health in text a school publishes (pure: no I/O).

Health is special-category data (AVG/GDPR art. 9): "Noor was ziek", "Daan zit met koorts thuis",
"Sem (astma) deed mee" say something about a child's health to everyone who reads the newsletter.
A caption's clause that mentions health is removed on every channel, closed ones included (see
:func:`photoguard.core.naming.scrub_caption`); a line of text in a photo that mentions it is
covered on every channel (:func:`photoguard.core.textpolicy.decide_text`).

The list is photoguard's own: illnesses and symptoms, injuries, care and treatment, conditions
and diagnoses a teacher might write about a pupil, in Dutch with the common English words. It
is matched as whole words (``muziek`` is not ``ziek``), without case. Removing a clause that
did not need it costs a few words of a caption; publishing a child's diagnosis cannot be undone,
so the list leans towards removal (``tandarts``, ``luizen`` go too).
"""

from __future__ import annotations

import re

__all__ = ["HEALTH_WORDS", "health_spans", "mentions_health"]

#: regular-expression word forms; each is matched as a whole word, case-insensitively
HEALTH_WORDS: tuple[str, ...] = (
    # ill, sick and the forms a caption uses ('was ziek', 'ziekjes', 'ziekgemeld', 'ziekenhuis')
    r"(?:dood|wagen|zee|bed|kots)?ziek(?:e|en|er|st|jes|te|tes|ten|elijk|enhuis\w*|gemeld|melding\w*|teverzuim|teverlof|boeg)?",
    r"(?:niet )?lekker (?:in zijn|in haar) vel",
    r"griep\w*",
    r"verkouden|verkoudheid",
    r"koorts\w*",
    r"(?:hoofd|buik|keel|oor|kies|rug|spier|groei)pijn",
    r"misselijk\w*",
    r"overgeven|overgegeven|braken|gebraakt|spugen|gespuugd",
    r"diarree|buikgriep",
    r"(?:water|kinder)?pokken|mazelen|rodehond|kinkhoest|roodvonk|krentenbaard|hand-voet-mondziekte",
    r"corona\w*|covid(?:-?19)?|besmet\w*",
    r"hoofdluis|luizen\w*|neten",  # not 'luis': Luis is a first name
    r"allergie\w*|allergisch\w*",
    r"astma\w*|hooikoorts|eczeem|epilepsie|epileptisch\w*|diabetes|suikerziekte|insuline",
    r"adhd|add|autisme|autistisch\w*|pdd-nos|dyslexie|dyslectisch|dyscalculie|syndroom|down-?syndroom",
    r"depressie\w*|depressief|angststoornis\w*|burn-?out|trauma\w*|rouwverwerking",
    r"kanker|leukemie|tumor|tumoren|chemo\w*|bestraling\w*",
    r"operatie\w*|geopereerd|ingreep|opgenomen in het ziekenhuis|narcose",
    # not 'breuk' alone: fractions in maths
    r"gebroken (?:arm|been|pols|enkel|sleutelbeen|vinger|teen|neus|elleboog)|armbreuk|beenbreuk",
    r"in het gips|gipsarm|gipsbeen|mitella|rolstoel\w*|op krukken|hersenschudding|blessure\w*|geblesseerd",
    r"medicijn\w*|medicatie|pillen|antibiotica|inhalator|puffer|epipen|paracetamol",
    r"huisarts\w*|dokter\w*|tandarts\w*|fysio\w*|logopedi\w*|ergotherap\w*|therapie\w*|therapeut\w*|psycholo\w*"
    r"|orthopedagoog|kinderarts\w*|specialist in het ziekenhuis",
    r"gehoorapparaat|hartafwijking|hartoperatie|handicap\w*|gehandicapt\w*|beperking",
    # English, for the captions some staff write
    r"sick|ill|illness|flu|fever|hospital\w*|allerg(?:y|ies|ic)|asthma|epilepsy|autism|autistic|cancer",
    r"surgery|injur(?:y|ies|ed)|broken (?:arm|leg|wrist|ankle)|wheelchair|chickenpox|measles|medication|"
    r"medicine|therapy|diagnos(?:is|ed)|disabilit(?:y|ies)|disabled|concussion",
)

#: whole words: a letter or digit may not touch the match ('muziek'); '_' and '-' separate words
#: as they do in file names ('musical_noor-ziek')
_HEALTH = re.compile(r"(?<![^\W_])(?:" + "|".join(HEALTH_WORDS) + r")(?![^\W_])", re.IGNORECASE)


def health_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every health word in ``text``."""
    return [(m.start(), m.end()) for m in _HEALTH.finditer(text)]


def mentions_health(text: str) -> bool:
    return _HEALTH.search(text) is not None
