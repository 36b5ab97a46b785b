"""The web app's words in Dutch (default) and English, reasons in plain Dutch, and times in the
school's time zone written the Dutch way (``2-12-2026 18:04``)."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

LANGUAGES = ("nl", "en")
DEFAULT_LANGUAGE = "nl"
DEFAULT_TIMEZONE = "Europe/Amsterdam"

_WORDS: dict[str, tuple[str, str]] = {
    # key: (nl, en)
    "app": ("Fotowacht", "Photoguard"),
    "login.title": ("Inloggen", "Log in"),
    "login.username": ("Gebruikersnaam", "User name"),
    "login.password": ("Wachtwoord", "Password"),
    "login.submit": ("Inloggen", "Log in"),
    "login.failed": ("Gebruikersnaam of wachtwoord onjuist.", "Wrong user name or password."),
    "login.throttled": (
        "Te veel mislukte pogingen. Probeer het over een minuut opnieuw.",
        "Too many failed attempts. Try again in a minute.",
    ),
    "login.expired": ("Het formulier was verlopen; probeer het opnieuw.", "The form had expired; try again."),
    "logout": ("Uitloggen", "Log out"),
    "nav.review": ("Beoordelen", "Review"),
    "nav.uploads": ("Mijn uploads", "My uploads"),
    "nav.home": ("Start", "Home"),
    "nav.language": ("English", "Nederlands"),
    "role.teacher": ("leerkracht", "teacher"),
    "role.comms": ("communicatie", "communications"),
    "role.privacy": ("privacyfunctionaris", "privacy officer"),
    "role.admin": ("beheerder", "administrator"),
    "home.admin": (
        "Accounts beheert u op de server met 'photoguard user'.",
        "Accounts are managed on the server with 'photoguard user'.",
    ),
    "queue.title": ("Foto's die op beoordeling wachten", "Photos waiting for review"),
    "queue.empty": ("Er wacht niets op beoordeling.", "Nothing is waiting for review."),
    "queue.since": ("sinds", "since"),
    "queue.held_for": ("Vastgehouden voor", "Held for"),
    "queue.open": ("Bekijken", "Open"),
    "item.title": ("Vastgehouden foto", "Held photo"),
    "item.title_clip": ("Vastgehouden clip", "Held clip"),
    "face.title_clip": ("Gezichten in deze clip", "Faces in this clip"),
    "face.hint_clip": (
        "In een clip volgt elk gezicht een spoor door veel beelden: u keurt de clip per kanaal of in zijn "
        "geheel goed (twijfelgevallen blijven dan bedekt) of af. De beelden hieronder tonen wat elk kanaal krijgt.",
        "In a clip each face is a track through many frames: approve the clip per channel or as a whole "
        "(uncertain faces then stay covered) or reject it. The frames below show what each channel gets.",
    ),
    "item.reason": ("Reden", "Reason"),
    "item.channel": ("Kanaal", "Channel"),
    "item.faces": ("Gezichten", "Faces"),
    "item.face": ("Gezicht", "Face"),
    "item.approve": ("Goedkeuren voor", "Approve for"),
    "item.approve_all": ("Alle vastgehouden kanalen goedkeuren", "Approve all held channels"),
    "item.reject": ("Afwijzen en origineel verwijderen", "Reject and delete the original"),
    "item.original": ("Origineel tonen (wordt vastgelegd)", "Show the original (this is recorded)"),
    "item.no_preview": ("Geen voorbeeld beschikbaar", "No preview available"),
    "clip.frames": ("Vier beelden uit de clip", "Four frames from the clip"),
    "clip.legend": (
        "Vier beelden verspreid over de clip, zoals dit kanaal ze krijgt (met de tijd in de clip). "
        "Groen omlijnd: zichtbaar; oranje: lijkt op een leerling maar blijft bedekt, ook na goedkeuren; rood: bedekt.",
        "Four frames spread over the clip, as this channel gets them (with the time in the clip). "
        "Green outline: visible; orange: resembles a pupil but stays covered, also after approval; red: covered.",
    ),
    "item.published": ("al gepubliceerd", "published already"),
    "item.not_held": ("niet vastgehouden voor dit kanaal", "not held for this channel"),
    "item.resolved": ("Deze foto is al afgehandeld.", "This photo has been dealt with."),
    "item.back": ("Terug naar de lijst", "Back to the list"),
    "action.visible": ("zichtbaar", "visible"),
    "action.redact": ("onherkenbaar", "redacted"),
    "action.hold": ("wacht op beoordeling", "waiting for review"),
    "done.approved": ("Goedgekeurd", "Approved"),
    "done.rejected": ("Afgewezen; het origineel is verwijderd.", "Rejected; the original was deleted."),
    "done.failed": ("Dat lukte niet", "That did not work"),
    "done.not_published": (
        "Goedgekeurd, maar niet gepubliceerd; de foto blijft vastgehouden",
        "Approved, but not published; the photo stays held",
    ),
    "uploads.title": ("Mijn uploads", "My uploads"),
    "uploads.empty": ("Nog geen uploads uit uw mappen.", "No uploads from your folders yet."),
    "uploads.folder": ("Map", "Folder"),
    "uploads.status": ("Status", "Status"),
    "uploads.when": ("Binnengekomen", "Arrived"),
    "uploads.what_now": ("Wat nu?", "What now?"),
    "uploads.arriving": (
        "upload(s) nog onderweg: wacht op de rest van het bestand.",
        "upload(s) still arriving: waiting for the rest of the file.",
    ),
    "status.published": ("gepubliceerd", "published"),
    "status.held": ("vastgehouden", "held"),
    "status.rejected": ("geweigerd", "rejected"),
    "status.duplicate": ("dubbel", "duplicate"),
    "status.withdrawn": ("teruggetrokken", "withdrawn"),
    "next.published": ("Niets te doen.", "Nothing to do."),
    "next.held": ("Wacht op beoordeling door communicatie.", "Waiting for review by communications."),
    "next.rejected": ("Upload de foto opnieuw (een ander bestand).", "Upload the photo again (another file)."),
    "next.duplicate": ("Deze foto was er al; niets te doen.", "This photo was there already; nothing to do."),
    "error.forbidden": ("U heeft geen toegang tot deze pagina.", "You do not have access to this page."),
    "error.not_found": ("Niet gevonden.", "Not found."),
    "error.csrf": (
        "Het formulier was verlopen of onvolledig. Laad de pagina opnieuw.",
        "The form had expired or was incomplete. Reload the page.",
    ),
    # comms and privacy desk
    "nav.comms": ("Kanalen", "Channels"),
    "nav.takedowns": ("Verwijderlijst", "Takedowns"),
    "nav.privacy": ("Privacy", "Privacy"),
    "home.admin_desk": (
        "Als beheerder ziet u de kanalen, de verwijderlijst en de privacypagina's zonder namen.",
        "As administrator you see the channels, the takedown list and the privacy pages without names.",
    ),
    "comms.title": ("Kanalen", "Channels"),
    "comms.intro": (
        "Per kanaal de gepubliceerde bestanden. 'Nieuw' telt wat erbij kwam sinds uw vorige bezoek.",
        "The published files per channel. 'New' counts what arrived since your previous visit.",
    ),
    "comms.files": ("Bestanden", "Files"),
    "comms.new": ("Nieuw", "New"),
    "comms.new_since": ("nieuw sinds je vorige bezoek", "new since your last visit"),
    "comms.new_column": ("Nieuw sinds vorig bezoek", "New since the last visit"),
    "comms.last_visit": ("Vorig bezoek", "Previous visit"),
    "comms.never": ("nog niet bekeken", "not visited yet"),
    "comms.first_visit": ("Uw eerste bezoek: alles is nieuw.", "Your first visit: everything is new."),
    "comms.empty": ("Nog niets gepubliceerd in dit kanaal.", "Nothing published in this channel yet."),
    "comms.select": ("Selecteren", "Select"),
    "comms.select_file": ("Selecteer", "Select"),
    "comms.download": ("Downloaden", "Download"),
    "comms.zip": ("Selectie downloaden als zip", "Download the selection as a zip"),
    "comms.none_selected": ("Kies eerst een of meer bestanden.", "Choose one or more files first."),
    "comms.no_thumb": ("geen voorbeeld", "no preview"),
    "comms.published": ("Gepubliceerd", "Published"),
    "comms.back": ("Alle kanalen", "All channels"),
    "desk.csv": ("Downloaden als CSV (Excel)", "Download as CSV (Excel)"),
    "desk.empty": ("Niets in deze lijst.", "Nothing in this list."),
    "desk.yes": ("ja", "yes"),
    "desk.no": ("nee", "no"),
    "desk.at": ("Tijd", "Time"),
    "desk.channel": ("Kanaal", "Channel"),
    "desk.file": ("Bestand", "File"),
    "desk.sha256": ("sha256", "sha256"),
    "desk.pupil_id": ("Leerling-id", "Pupil id"),
    "desk.name": ("Naam", "Name"),
    "desk.group": ("Groep", "Group"),
    "desk.left_on": ("Uitgeschreven", "Left on"),
    "desk.confirmed": ("Laatst bevestigd", "Last confirmed"),
    "desk.days": ("Dagen geleden", "Days ago"),
    "desk.reason": ("Reden", "Reason"),
    "desk.replacement": ("Vervangen door", "Replaced by"),
    "desk.done": ("Gedaan", "Done"),
    "desk.open": ("open", "open"),
    "desk.mark_done": ("Gedaan", "Done"),
    "desk.marked": ("Gemarkeerd als gedaan.", "Marked as done."),
    "desk.what": ("Wat", "What"),
    "desk.old": ("Oud", "Old"),
    "desk.new": ("Nieuw", "New"),
    "desk.kind": ("Soort bron", "Kind of source"),
    "desk.source": ("Bron", "Source"),
    "desk.version": ("Versie", "Version"),
    "desk.ref": ("Verwijzing", "Reference"),
    "desk.section": ("Onderdeel", "Section"),
    "desk.detail": ("Details", "Details"),
    "desk.count": ("Aantal", "Count"),
    "desk.who": ("Wie", "Who"),
    "desk.event": ("Wat", "What"),
    "desk.photo": ("Foto (sha256)", "Photo (sha256)"),
    "desk.value": ("Waarde", "Value"),
    "desk.since": ("Sinds", "Since"),
    "desk.administration": ("Volgens de administratie", "According to the administration"),
    "desk.from": ("Van", "From"),
    "desk.to": ("Tot en met", "To"),
    "desk.anyone": ("iedereen", "anyone"),
    "desk.anything": ("alles", "anything"),
    "desk.filter": ("Filteren", "Filter"),
    "desk.page": ("Pagina", "Page"),
    "desk.of": ("van", "of"),
    "desk.previous": ("Vorige", "Previous"),
    "desk.next": ("Volgende", "Next"),
    "desk.events": ("gebeurtenissen", "events"),
    "desk.privacy": ("Privacy", "Privacy"),
    "desk.privacy_intro": (
        "De lijsten van de privacyfunctionaris. Elke lijst kunt u downloaden als CSV voor Excel.",
        "The privacy officer's lists. Every list can be downloaded as CSV for Excel.",
    ),
    "desk.consents": ("Toestemmingen per leerling", "Consents per pupil"),
    "desk.consents_intro": (
        "Met namen: alleen voor de privacyfunctionaris. Klik een leerling-id voor de geschiedenis.",
        "With names: for the privacy officer only. Click a pupil id for the history.",
    ),
    "desk.history": ("Geschiedenis van de toestemming", "Consent history"),
    "desk.history_intro": (
        "Elke wijziging met haar bron, oudste eerst.",
        "Every change with its source, oldest first.",
    ),
    "desk.current": ("Nu geldend", "Current"),
    "desk.unconfirmed": ("Niet bevestigd in 12 maanden", "Not confirmed in 12 months"),
    "desk.unconfirmed_intro": (
        "Leerlingen op school van wie de toestemming langer dan 12 maanden niet is bevestigd: stuur een herinnering.",
        "Pupils at school whose consent was not confirmed for over 12 months: send a reminder.",
    ),
    "desk.takedowns": ("Verwijderlijst", "Takedown list"),
    "desk.takedowns_intro": (
        "Bestanden die photoguard heeft teruggetrokken. Haal ze weg waar ze geplaatst zijn "
        "(website, sociale media, Parro) en markeer ze als gedaan. Nieuwste eerst.",
        "Files photoguard has withdrawn. Take them down where they were posted (website, social "
        "media, Parro) and mark them done. Newest first.",
    ),
    "desk.deletions": ("Verwijderlog", "Deletion log"),
    "desk.deletions_intro": ("Wat photoguard heeft verwijderd en waarom, nieuwste eerst.",
                             "What photoguard deleted and why, newest first."),
    "desk.report": ("Privacyrapport", "Privacy report"),
    "desk.report_intro": (
        "Per kanaal de aantallen, en de toestemmingswijzigingen, terugtrekkingen en verwijderingen in de periode.",
        "Counts per channel, and the consent changes, withdrawals and deletions in the period.",
    ),
    "desk.audit": ("Audittrail", "Audit trail"),
    "desk.audit_intro": ("Wie deed wat en wanneer, nieuwste eerst.", "Who did what and when, newest first."),
    "report.channels": ("per kanaal", "per channel"),
    "desk.report_events": (
        "Toestemmingswijzigingen, terugtrekkingen en verwijderingen",
        "Consent changes, withdrawals and deletions",
    ),
    "report.published": ("gepubliceerd", "published"),
    "report.withdrawn": ("teruggetrokken", "withdrawn"),
    "report.takedowns": ("verwijderopdrachten", "takedowns"),
    "report.live_now": ("nu online", "live now"),
    "report.consent": ("toestemming", "consent"),
    "report.withdrawal": ("terugtrekking", "withdrawal"),
    "report.deletion": ("verwijdering", "deletion"),
    "consent.classlist_phone": ("Telefoon op klassenlijst", "Phone on class list"),
    "consent.face_matching": ("Gezichtsherkenning", "Face matching"),
    "kind.administration": ("administratie", "administration"),
    "kind.manual": ("handmatig", "manual"),
    "kind.web": ("webformulier", "web form"),
}

#: (pattern on the ledger's English reason, Dutch text); the first match wins
_REASONS_NL: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p), nl)
    for p, nl in (
        (
            r"^([\w./-]+) not writable",
            "De map \\1 is niet beschrijfbaar (alleen-lezen of geen rechten); de foto blijft vastgehouden. "
            "Keur hem opnieuw goed zodra de beheerder dit heeft opgelost",
        ),
        (
            r"^([\w./-]+)?:? ?disk full|^disk full",
            "De schijf is vol; de foto blijft vastgehouden. Keur hem opnieuw goed zodra er weer ruimte is",
        ),
        (
            r"^uncertain match to a consenting pupil",
            "Een gezicht lijkt op een leerling met toestemming, maar "
            "niet zeker genoeg. Iemand van communicatie kijkt ernaar.",
        ),
        (r"^uncertain match", "een gezicht lijkt op een leerling, maar niet zeker genoeg"),
        (r"^not recognised", "niet herkend als leerling met toestemming"),
        (r"^too small to recognise", "te klein om te herkennen"),
        (r"^no consent for (\w+)", r"geen toestemming voor \1"),
        (r"^no face_matching consent", "geen toestemming voor gezichtsherkenning"),
        (r"^pupil has left the school", "de leerling heeft de school verlaten"),
        (r"^pupil not in the registry", "niet herkend als leerling met toestemming"),
        (r"^consent for (\w+)", r"toestemming voor \1"),
        (r"^internal error", "Er ging intern iets mis; de foto is vastgehouden en niets is gepubliceerd"),
        (r"^consent kept changing", "De toestemmingen veranderden tijdens het verwerken; probeer het later opnieuw"),
        (r"failed the metadata check", "Het opgeschoonde bestand bevatte nog metadata; niets is gepubliceerd"),
        (r"too large|too many pixels", "Het bestand is te groot"),
        (
            r"too heavy to decode|too many scans|too many parts",
            "Te zware afbeelding: het lezen kost te veel werk; exporteer de foto opnieuw als gewone foto",
        ),
        (r"image data is damaged", "De beeldgegevens zijn beschadigd; upload het origineel opnieuw"),
        (r"empty", "Het bestand is leeg"),
        (r"truncated|ends early|incomplete", "Het bestand is onvolledig (het uploaden is misschien afgebroken)"),
        (
            r"could not be decoded|unsupported|not a supported|unknown format",
            "Het bestand kon niet als foto worden gelezen (beschadigd of een onbekend formaat)",
        ),
        (r"symbolic link|not a regular file", "Dit is geen gewoon bestand"),
        (r"duplicate", "Deze foto was al eerder aangeboden"),
    )
)


# review decisions: per face (confirm the near-matched pupil, not this pupil, not a face) and the
# optional list of published photos where a consenting pupil was redacted
_WORDS.update(
    {
        "face.title": ("Gezichten op deze foto", "Faces in this photo"),
        "face.hint": (
            "Bevestig of een gezicht de genoemde leerling is. Een leerling wordt alleen zichtbaar op "
            "kanalen waarvoor toestemming is; daarna keurt u de foto goed.",
            "Confirm whether a face is the pupil named. A pupil becomes visible only on channels with "
            "consent; then approve the photo.",
        ),
        "face.match.match": ("herkend als leerling", "recognised as a pupil"),
        "face.match.near": ("lijkt op een leerling, niet zeker genoeg", "looks like a pupil, not certain enough"),
        "face.match.none": ("niet herkend", "not recognised"),
        "face.match.too_small": ("te klein om te herkennen", "too small to recognise"),
        "face.candidate": ("Lijkt op", "Looks like"),
        "face.group": ("groep", "group"),
        "face.confirm": ("Dit is", "This is"),
        "face.reject": ("Niet deze leerling", "Not this pupil"),
        "face.not_a_face": ("Niet een gezicht", "Not a face"),
        "face.learn": (
            "ook bewaren als voorbeeld voor herkenning (alleen met toestemming gezichtsherkenning)",
            "also keep as an example for recognition (only with face matching consent)",
        ),
        "face.reviewed.confirm": ("bevestigd", "confirmed"),
        "face.reviewed.stranger": ("niet deze leerling", "not this pupil"),
        "face.reviewed.not_a_face": ("geen gezicht", "not a face"),
        "face.done.confirm": (
            "Bevestigd. Het voorbeeld is bijgewerkt; keur de foto goed om te publiceren.",
            "Confirmed. The preview is updated; approve the photo to publish it.",
        ),
        "face.done.stranger": (
            "Vastgelegd: niet deze leerling. Het gezicht wordt onherkenbaar gemaakt.",
            "Recorded: not this pupil. The face will be redacted.",
        ),
        "face.done.not_a_face": (
            "Vastgelegd: geen gezicht. Daar komt geen vlak meer.",
            "Recorded: not a face. No fill there any more.",
        ),
        "action.not_a_face": ("geen gezicht (geen vlak)", "not a face (no fill)"),
        "optional.link": (
            "Optioneel: gepubliceerde foto's waarop een leerling zichtbaar had kunnen zijn",
            "Optional: published photos where a pupil could have been visible",
        ),
        "optional.title": ("Had zichtbaar kunnen zijn", "Could have been visible"),
        "optional.intro": (
            "Deze foto's zijn al gepubliceerd, met een gezicht onherkenbaar gemaakt dat op een leerling "
            "met toestemming lijkt. Niets wacht hierop. Bevestigen maakt de foto opnieuw en vervangt de "
            "gepubliceerde versie.",
            "These photos are published already, with a face redacted that looks like a pupil with "
            "consent. Nothing waits for this. Confirming renders the photo again and replaces the "
            "published version.",
        ),
        "optional.empty": ("Er is niets om na te kijken.", "There is nothing to look at."),
        "optional.photo": ("Gepubliceerde foto", "Published photo"),
        "optional.published": ("Gepubliceerd", "Published"),
        "optional.channels": ("kan zichtbaar op", "could be visible on"),
        "optional.dismiss": ("Laat zo", "Leave as it is"),
        "optional.no_original": (
            "Het origineel is niet bewaard: opnieuw maken kan niet.",
            "The original was not kept: it cannot be rendered again.",
        ),
        "optional.done.confirm": ("Opnieuw gepubliceerd", "Published again"),
        "optional.done.dismiss": ("Vastgelegd: blijft zoals het is.", "Recorded: stays as it is."),
    }
)
_REASONS_NL += ((re.compile(r"^marked not a face"), "door een beoordelaar gemarkeerd als geen gezicht"),)


#: what the deletion log says was deleted (its ``kind``), in words; an unknown kind is shown as it is
_DELETED: dict[str, tuple[str, str]] = {
    "original": ("origineel uit de kluis", "original from the vault"),
    "quarantine_original": ("origineel uit quarantaine", "original from quarantine"),
    "quarantine": ("quarantaine", "quarantine"),
    "output": ("gepubliceerd bestand", "published file"),
    "channel": ("kanaalbestand", "channel file"),
    "caption": ("bijschrift", "caption"),
    "templates": ("gezichtsgegevens (voorbeelden)", "face data (templates)"),
    "face_decisions": ("beslissingen over gezichten", "face decisions"),
    "temp": ("tijdelijke bestanden", "temporary files"),
    "audit": ("oude auditregels", "old audit rows"),
}


def deleted_kind(kind: str, lang: str) -> str:
    words = _DELETED.get(kind)
    if words is None:
        return kind
    return f"{words[1] if lang == 'en' else words[0]} ({kind})"


def word(key: str, lang: str) -> str:
    nl, en = _WORDS.get(key, (key, key))
    return en if lang == "en" else nl


#: the channels' names as staff know them (a channel the school added itself keeps its own name)
_CHANNELS: dict[str, tuple[str, str]] = {
    "newsletter": ("Nieuwsbrief", "Newsletter"),
    "parro": ("Parro", "Parro"),
    "guide": ("Schoolgids", "School guide"),
    "website": ("Website", "Website"),
    "social": ("Sociale media", "Social media"),
}


#: audit event names (as stored, ids only) in the staff's words; an unknown one is shown as it is
_EVENTS: dict[str, tuple[str, str]] = {
    "web.login": ("ingelogd", "logged in"),
    "web.login_failed": ("inloggen mislukt", "login failed"),
    "web.logout": ("uitgelogd", "logged out"),
    "web.original_viewed": ("origineel bekeken", "original viewed"),
    "web.approve": ("goedgekeurd in de webapp", "approved in the web app"),
    "web.approve_failed": ("goedkeuren mislukt", "approval failed"),
    "web.reject": ("geweigerd in de webapp", "rejected in the web app"),
    "web.takedown_done": ("verwijdering gedaan", "takedown done"),
    "review.approve": ("goedgekeurd", "approved"),
    "review.reject": ("geweigerd", "rejected"),
    "review.face": ("gezicht beoordeeld", "face decided"),
    "review.template": ("gezicht bewaard als voorbeeld", "face kept as a template"),
    "review.export": ("origineel geëxporteerd", "original exported"),
    "optional.confirmed": ("alsnog zichtbaar gemaakt", "made visible after all"),
    "optional.dismissed": ("gelaten zoals het was", "left as it was"),
    "ingest": ("binnengekomen", "arrived"),
    "ingest.ignored": ("genegeerd bij binnenkomst", "ignored on arrival"),
    "ingest.rejected": ("geweigerd bij binnenkomst", "refused on arrival"),
    "photo.published": ("foto gepubliceerd", "photo published"),
    "photo.held": ("foto vastgehouden", "photo held"),
    "photo.rejected": ("foto geweigerd", "photo rejected"),
    "photo.duplicate": ("foto dubbel", "duplicate photo"),
    "photo.quarantined": ("foto in quarantaine", "photo quarantined"),
    "photo.kept": ("foto bewaard", "photo kept"),
    "publish": ("kopie geplaatst", "copy published"),
    "original.quarantined": ("origineel in quarantaine", "original quarantined"),
    "original.removed": ("origineel verwijderd", "original removed"),
    "original.vaulted": ("origineel in de kluis", "original put in the vault"),
    "enrol.template": ("aangemeld voor herkenning", "enrolled for recognition"),
    "biometrics.destroyed": ("gezichtsgegevens vernietigd", "face data destroyed"),
    "consent.import": ("toestemmingen ingelezen", "consents imported"),
    "consent.set": ("toestemming gewijzigd", "consent changed"),
    "consent.confirmed": ("toestemming bevestigd", "consent confirmed"),
    "consent.conflict": ("tegenstrijdige toestemming", "conflicting consent"),
    "service.started": ("dienst gestart", "service started"),
    "service.stopped": ("dienst gestopt", "service stopped"),
}


def event_label(name: str, lang: str) -> str:
    """An audit event in words, with its stored name after it (the name the CLI and the CSV use
    too, so a row can be found again): ``goedgekeurd in de webapp (web.approve)``."""
    words = _EVENTS.get(name)
    if words is None:
        return name
    return f"{words[1] if lang == 'en' else words[0]} ({name})"


def channel_label(name: str, lang: str) -> str:
    nl, en = _CHANNELS.get(name, (name, name))
    return en if lang == "en" else nl


def reason(text: str, lang: str) -> str:
    """A ledger reason (English, technical) in the staff's language; Dutch in plain words. An
    unknown reason is shown as it is, so nothing is hidden."""
    if lang == "en" or not text:
        return text
    for pattern, nl in _REASONS_NL:
        m = pattern.search(text)
        if m:  # a channel named in the reason is shown by the name staff know (Nieuwsbrief)
            return _fill(nl, [channel_label(g or "", "nl") for g in m.groups()])
    return text


def _fill(template: str, values: list[str]) -> str:
    """``template`` with ``\\1``, ``\\2`` ... replaced by ``values``."""
    return re.sub(r"\\(\d)", lambda ref: values[int(ref.group(1)) - 1], template)


def pick_language(cookie: str | None, accept_language: str | None) -> str:
    """The cookie's choice, else the first of nl/en in Accept-Language, else Dutch."""
    if cookie in LANGUAGES:
        return str(cookie)
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()[:2]
        if tag in LANGUAGES:
            return tag
    return DEFAULT_LANGUAGE


def local_time(iso_utc: str | None, tz: ZoneInfo) -> str:
    """An ISO UTC time from the ledger as ``d-m-yyyy HH:MM`` in ``tz``; '' when missing or unreadable."""
    if not iso_utc:
        return ""
    try:
        t = datetime.fromisoformat(iso_utc.replace("Z", "+00:00"))
    except ValueError:
        return ""
    if t.tzinfo is None:
        from datetime import UTC

        t = t.replace(tzinfo=UTC)
    t = t.astimezone(tz)
    return f"{t.day}-{t.month}-{t.year} {t:%H:%M}"
