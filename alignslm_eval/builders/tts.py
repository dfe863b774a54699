"""espeak-ng text-to-speech through ctypes on the library shipped by the `espeakng-loader` wheel.

What this version of espeak-ng (1.52) does, found by experiment and from its `speak_lib.h`:

* Phoneme input: with the `espeakPHONEMES` flag, text inside `[[...]]` is read as espeak's own ASCII phoneme
  mnemonics (Kirshenbaum-like, e.g. `[[h@l'oU]]`). IPA is *not* accepted there: the first character that is not a
  mnemonic ends the word, so `[[həlˈoʊ]]` comes out as a truncated 0.2 s blip. `EspeakTTS` therefore converts IPA
  to mnemonics itself. The table is learnt from espeak-ng: a fixed English calibration text is transcribed twice
  with `espeak_TextToPhonemes` (IPA and mnemonics, one phoneme per separator), and the two transcriptions are
  zipped phoneme by phoneme. `espeak_TextToPhonemes` does not honour `[[...]]`, so the table cannot be read back
  from mnemonics directly.
* Determinism: the synthesiser keeps state between utterances in function-level statics that no API call resets
  (the pitch "flutter" index and the gain control in `wavegen.c`), so with one long-lived initialisation the same
  text comes out a few samples different depending on what was spoken before. Each call here therefore loads the
  library, initialises it, synthesises, terminates it and unloads it (`dlclose`), which restores every static from
  the file image. That costs about 1.5 ms per call (a sentence takes about 4 ms in all, some 700x faster than
  real time). Output is then a pure function of (text, voice, rate, pitch), across calls and processes, breathy
  and Klatt variants included (espeak's own noise generator is seeded on each call as well). If other code in
  the process keeps the same library loaded, the unload cannot happen and this guarantee is lost.
* Voices: `espeak_SetVoiceByName` accepts language names (`en-us`), voice names and identifiers, plus a
  `+variant` suffix naming a file in `espeak-ng-data/voices/!v` (`en-us+f3`, `en+m3`). An unknown variant is
  silently ignored by espeak-ng, so it is checked against that folder here.

The library is process-global, so every call holds one module-level lock.
"""

from __future__ import annotations

import ctypes
import os
import re
import threading
import unicodedata
from collections import Counter, defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from alignslm_eval.io.errors import UserError

# speak_lib.h constants
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_CHARS_UTF8 = 1
_PHONEMES = 0x100
_POS_CHARACTER = 1
_PARAM_RATE = 1
_PARAM_PITCH = 3
_PHONEMES_IPA = 0x02
_EE_OK = 0

RATE_MIN, RATE_MAX, RATE_DEFAULT = 80, 450, 175
PITCH_MIN, PITCH_MAX, PITCH_DEFAULT = 0, 100, 50

#: espeak's noise generator seed, fixed so breathy/whispered variants are reproducible
_RAND_SEED = 1
# phoneme separator for espeak_TextToPhonemes; not a character of any IPA symbol or espeak mnemonic
_SEP = "\u00a6"

_LOCK = threading.RLock()

_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class _EspeakVoice(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_char_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


def _declare(lib: ctypes.CDLL) -> None:
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
    lib.espeak_SetSynthCallback.restype = None
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetVoiceByName.restype = ctypes.c_int
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_SetParameter.restype = ctypes.c_int
    lib.espeak_Synth.argtypes = [
        ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
        ctypes.c_void_p, ctypes.c_void_p,
    ]
    lib.espeak_Synth.restype = ctypes.c_int
    lib.espeak_Synchronize.restype = ctypes.c_int
    lib.espeak_Terminate.restype = ctypes.c_int
    lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_int]
    lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
    lib.espeak_ListVoices.argtypes = [ctypes.c_void_p]
    lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_EspeakVoice))
    lib.espeak_Info.argtypes = [ctypes.c_void_p]
    lib.espeak_Info.restype = ctypes.c_char_p
    if hasattr(lib, "espeak_ng_SetRandSeed"):
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_ng_SetRandSeed.restype = ctypes.c_int


def _unload(lib: ctypes.CDLL) -> None:
    import _ctypes

    close = getattr(_ctypes, "dlclose", None) or getattr(_ctypes, "FreeLibrary", None)
    if close is not None:
        close(lib._handle)


@dataclass(frozen=True)
class Voice:
    """One synthetic voice: an espeak-ng voice name (with optional `+variant`), speaking rate and base pitch.

    Written as a spec string `NAME[+VARIANT][:rRATE][:pPITCH]`, e.g. `en-us`, `en-us+f3`, `en+m3:r150:p60`; the
    spec (defaults left out) is the `voice` column of the built benchmarks.
    """

    name: str
    rate: int = RATE_DEFAULT
    pitch: int = PITCH_DEFAULT

    @classmethod
    def parse(cls, spec: str) -> "Voice":
        """Read a spec string; raises UserError for a malformed one or a rate/pitch out of range."""
        text = str(spec).strip()
        parts = text.split(":")
        name = parts[0].strip()
        if not name or not re.fullmatch(r"[A-Za-z0-9_.\-/ ()]+(\+[A-Za-z0-9_.\- ]+)?", name):
            raise UserError(
                f"voice {spec!r}: expected NAME[+VARIANT][:rRATE][:pPITCH], e.g. en-us+f3:r150; "
                "run `alignslm-data voices` for the names"
            )
        rate, pitch = RATE_DEFAULT, PITCH_DEFAULT
        for part in parts[1:]:
            match = re.fullmatch(r"([rp])(\d+)", part.strip())
            if not match:
                raise UserError(f"voice {spec!r}: option {part!r} must be rRATE (words/min) or pPITCH (0-100)")
            if match[1] == "r":
                rate = int(match[2])
            else:
                pitch = int(match[2])
        voice = cls(name, rate, pitch)
        voice.check_range()
        return voice

    def check_range(self) -> None:
        if not RATE_MIN <= self.rate <= RATE_MAX:
            raise UserError(f"voice {self.spec!r}: rate {self.rate} outside {RATE_MIN}-{RATE_MAX} words per minute")
        if not PITCH_MIN <= self.pitch <= PITCH_MAX:
            raise UserError(f"voice {self.spec!r}: pitch {self.pitch} outside {PITCH_MIN}-{PITCH_MAX}")

    @property
    def spec(self) -> str:
        out = self.name
        if self.rate != RATE_DEFAULT:
            out += f":r{self.rate}"
        if self.pitch != PITCH_DEFAULT:
            out += f":p{self.pitch}"
        return out

    def __str__(self) -> str:
        return self.spec


@dataclass(frozen=True)
class VoiceInfo:
    """One entry of espeak-ng's voice list."""

    language: str
    name: str
    identifier: str


# English words covering every en-us / en-gb phoneme espeak-ng emits; zipped IPA <-> mnemonic to learn the table.
_CALIBRATION_TEXT = (
    "a about above ahead bird hurt her butter father hot lot cot caught thought law dog cloth palm car far bar "
    "four more fire hour our air hair care near here poor sure tour cure bee sea bit sit bet set bat sat but cut "
    "put foot book boot food goose bite buy boy toy bout cow go show say day pea tea key fee vie thigh thy see "
    "zoo she measure vision he me knee sing singer lee ray way yes why which church judge cheese badger water "
    "little button kitten bottle metal uh-oh cello happy city comma letter lesson roses village orange "
    "button sudden rhythm prism garden hidden station nation bottle petal pedal kettle treasure azure genre "
    "loch yeah idea real really player lawyer flower power tower rural mirror error horror sorry borrow "
    "quarry hurry worry carry marry merry very vary"
)

# Common IPA spellings an espeak-ng English voice may not emit, with the symbols it may use instead (first found).
_IPA_ALIASES: dict[str, tuple[str, ...]] = {
    "g": ("ɡ",),
    "r": ("ɹ",),
    "ɻ": ("ɹ",),
    "ɝ": ("ɜː",),
    "ɒ": ("ɑː",),
    "æ": ("a",),
    "a": ("æ",),
    "ɫ": ("l",),
    "ʧ": ("tʃ",),
    "ʤ": ("dʒ",),
    "ʍ": ("w",),
    "e": ("eɪ",),
    "o": ("oʊ", "əʊ"),
    "oʊ": ("əʊ",),
    "əʊ": ("oʊ",),
    "ɛə": ("ɛɹ", "eə"),
    "eə": ("ɛɹ",),
    "ɪə": ("ɪɹ", "iə"),
    "ʊə": ("ʊɹ",),
    "ɚ": ("ə",),
    "ɾ": ("t",),
    "ʔ": ("t",),
}
_IPA_STRESS = {"ˈ": "'", "ˌ": ","}
# dropped from IPA input: length on a vowel already long in espeak, syllable breaks, ties
_IPA_IGNORED = set("ː.‿͡")
_MNEMONIC_STRESS = "',%="


class EspeakTTS:
    """espeak-ng speech synthesis (22050 Hz int16) and phonemisation on the `espeakng-loader` wheel's library.

    Every method is thread-safe (one process-wide lock) and each call runs on a freshly loaded library, so results
    never depend on earlier calls.
    """

    def __init__(self, library_path: Optional[str] = None, data_path: Optional[str] = None):
        if library_path is None or data_path is None:
            try:
                import espeakng_loader
            except ImportError:
                raise UserError(
                    "espeak-ng not available: install the espeakng-loader package (pip install espeakng-loader)"
                )
            library_path = library_path or espeakng_loader.get_library_path()
            data_path = data_path or espeakng_loader.get_data_path()
        self.library_path = str(library_path)
        self.data_path = Path(data_path)
        if not Path(self.library_path).is_file():
            raise UserError(f"{self.library_path}: espeak-ng library not found; reinstall espeakng-loader")
        if not (self.data_path / "phontab").is_file():
            raise UserError(f"{self.data_path}: not an espeak-ng-data folder (no phontab); reinstall espeakng-loader")
        self._chunks: list[bytes] = []
        # kept on the instance: the C library holds a raw pointer to it while loaded
        self._callback = _SynthCallback(self._collect)
        self._ipa_tables: dict[str, dict[str, str]] = {}
        self._sample_rate: Optional[int] = None
        self._version: Optional[str] = None
        self._voice_names: Optional[list[VoiceInfo]] = None
        self._resolved: dict[str, str] = {}

    # ------------------------------------------------------------------------------------------------ library

    def _collect(self, wav, n, events) -> int:
        if wav and n > 0:
            self._chunks.append(ctypes.string_at(wav, n * 2))
        return 0

    @contextmanager
    def _session(self) -> Iterator[ctypes.CDLL]:
        with _LOCK:
            lib = ctypes.CDLL(self.library_path)
            initialised = False
            try:
                _declare(lib)
                # espeak_Initialize takes the folder that contains espeak-ng-data
                rate = lib.espeak_Initialize(
                    _AUDIO_OUTPUT_SYNCHRONOUS, 0, os.fsencode(self.data_path.parent), _INITIALIZE_DONT_EXIT
                )
                if rate <= 0:
                    raise UserError(f"{self.data_path}: espeak-ng failed to initialise; reinstall espeakng-loader")
                initialised = True
                if self._sample_rate is None:
                    self._sample_rate = rate
                    self._version = (lib.espeak_Info(None) or b"unknown").decode()
                lib.espeak_SetSynthCallback(self._callback)
                yield lib
            finally:
                if initialised:
                    lib.espeak_Terminate()
                _unload(lib)

    @property
    def sample_rate(self) -> int:
        """espeak-ng's output rate in Hz (22050 for the bundled voices)."""
        if self._sample_rate is None:
            with self._session():
                pass
        return int(self._sample_rate)

    @property
    def version(self) -> str:
        """espeak-ng version string, e.g. '1.52.0'."""
        if self._version is None:
            with self._session():
                pass
        return str(self._version)

    # ------------------------------------------------------------------------------------------------- voices

    def voices(self) -> list[VoiceInfo]:
        """All voices espeak-ng lists (language code, display name, identifier), sorted by language."""
        if self._voice_names is None:
            out = []
            with self._session() as lib:
                table = lib.espeak_ListVoices(None)
                i = 0
                while table[i]:
                    v = table[i].contents
                    # languages: a priority byte, then the language name, then more pairs; the first is the main one
                    language = (v.languages or b"\x00")[1:].decode(errors="replace")
                    out.append(VoiceInfo(language, (v.name or b"").decode(errors="replace"),
                                         (v.identifier or b"").decode(errors="replace")))
                    i += 1
            self._voice_names = sorted(out, key=lambda x: (x.language, x.identifier))
        return list(self._voice_names)

    def variants(self) -> list[str]:
        """Voice variant names usable as `+variant` (the files of espeak-ng-data/voices/!v)."""
        folder = self.data_path / "voices" / "!v"
        return sorted(p.name for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []

    def _voice_hint(self) -> str:
        languages = {v.language for v in self.voices()}
        common = [name for name in ("en-us", "en-gb", "en-gb-x-rp", "en-029", "de", "fr-fr", "es") if name in languages]
        return (f"e.g. {', '.join(common)} ({len(languages)} in all); variants like +f3, +m3 "
                "(`alignslm-data voices` lists them)")

    def _check_variant(self, voice: str) -> None:
        name, _, variant = str(voice).partition("+")
        if not name.strip():
            raise UserError(f"voice {voice!r}: empty voice name; {self._voice_hint()}")
        if variant and variant not in self.variants():
            some = ", ".join(v for v in self.variants() if re.fullmatch(r"[fm]\d", v))
            raise UserError(
                f"voice {voice!r}: unknown variant {variant!r}; espeak-ng variants include {some} "
                "(`alignslm-data voices` lists all)"
            )

    def _unknown_voice(self, voice: str) -> UserError:
        name = str(voice).partition("+")[0]
        return UserError(f"voice {voice!r}: unknown espeak-ng voice {name!r}; {self._voice_hint()}")

    def _resolve(self, voice: str) -> str:
        """The name espeak_SetVoiceByName accepts for `voice`; language codes without a voice file of their own
        (en-gb is the file gmw/en) are looked up in the voice list. Raises UserError for an unknown voice."""
        voice = str(voice)
        if voice not in self._resolved:
            self._check_variant(voice)
            name, plus, variant = voice.partition("+")
            candidates = [voice] + [
                v.identifier + plus + variant for v in self.voices() if v.language.lower() == name.strip().lower()
            ]
            with self._session() as lib:
                found = next((c for c in candidates if lib.espeak_SetVoiceByName(c.encode()) == _EE_OK), None)
            if found is None:
                raise self._unknown_voice(voice)
            self._resolved[voice] = found
        return self._resolved[voice]

    @contextmanager
    def _voice_session(self, voice: str) -> Iterator[ctypes.CDLL]:
        """A session with `voice` selected; raises UserError for an unknown voice."""
        name = self._resolve(voice)
        with self._session() as lib:
            if lib.espeak_SetVoiceByName(name.encode()) != _EE_OK:
                raise RuntimeError(f"espeak-ng accepted voice {name!r} once and then refused it")
            yield lib

    def check_voice(self, voice: str) -> None:
        """Raise UserError unless espeak-ng knows `voice` (and its `+variant`, if given)."""
        self._resolve(voice)

    # -------------------------------------------------------------------------------------------- synthesis

    def synthesize(
        self,
        text: str,
        voice: str = "en-us",
        rate: int = RATE_DEFAULT,
        pitch: int = PITCH_DEFAULT,
        phonemes: bool = False,
        alphabet: str = "ipa",
    ) -> tuple[np.ndarray, int]:
        """Speak `text`; returns (int16 mono samples, sample rate).

        With `phonemes=True` the text is a phoneme transcription: IPA by default (converted with
        `ipa_to_espeak`), or espeak's own mnemonics with `alphabet="espeak"` (with or without the `[[ ]]`).
        Raises UserError for empty text, an unknown voice, out-of-range rate/pitch or unknown IPA symbols.
        """
        if not isinstance(text, str) or not text.strip():
            raise UserError("text to synthesise is empty; give a non-empty sentence or phoneme string")
        Voice(str(voice), int(rate), int(pitch)).check_range()
        flags = _CHARS_UTF8
        if phonemes:
            if alphabet == "ipa":
                mnemonics, _ = self.ipa_to_espeak(text, voice)
            elif alphabet == "espeak":
                mnemonics = text.strip()
                if mnemonics.startswith("[[") and mnemonics.endswith("]]"):
                    mnemonics = mnemonics[2:-2]
            else:
                raise UserError(f"alphabet {alphabet!r}: use 'ipa' or 'espeak'")
            text = f"[[{mnemonics}]]"
            flags |= _PHONEMES
        data = text.encode("utf-8") + b"\0"
        with self._voice_session(voice) as lib:
            lib.espeak_SetParameter(_PARAM_RATE, int(rate), 0)
            lib.espeak_SetParameter(_PARAM_PITCH, int(pitch), 0)
            if hasattr(lib, "espeak_ng_SetRandSeed"):
                lib.espeak_ng_SetRandSeed(_RAND_SEED)
            self._chunks = []
            status = lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, flags, None, None)
            lib.espeak_Synchronize()
            chunks, self._chunks = self._chunks, []
            sample_rate = int(self._sample_rate)
        if status != _EE_OK:
            raise RuntimeError(f"espeak_Synth failed with status {status}")
        wav = np.frombuffer(b"".join(chunks), dtype=np.int16).copy()
        return wav, sample_rate

    # ---------------------------------------------------------------------------------------------- phonemes

    def _text_to_phonemes(self, lib: ctypes.CDLL, text: str, ipa: bool) -> list[list[str]]:
        """Words of phoneme names (stress marks kept), clause by clause; pauses dropped."""
        mode = (_PHONEMES_IPA if ipa else 0) | (ord(_SEP) << 8)
        buf = ctypes.create_string_buffer(text.encode("utf-8") + b"\0")
        ptr = ctypes.c_void_p(ctypes.addressof(buf))
        words: list[list[str]] = []
        while ptr.value:
            out = lib.espeak_TextToPhonemes(ctypes.byref(ptr), _CHARS_UTF8, mode)
            for word in (out or b"").decode("utf-8", errors="replace").split():
                phones = [p for p in word.split(_SEP) if p and not p.startswith("_")]
                if phones:
                    words.append(phones)
        return words

    def phonemize(self, text: str, voice: str = "en-us") -> list[list[str]]:
        """espeak-ng's IPA phonemes of `text`, one list per word, stress marks removed (e.g. brick -> b ɹ ɪ k)."""
        if not isinstance(text, str) or not text.strip():
            raise UserError("text to phonemise is empty; give a non-empty word or sentence")
        with self._voice_session(voice) as lib:
            words = self._text_to_phonemes(lib, text, ipa=True)
        out = [[p for p in (ph.lstrip("ˈˌ") for ph in word) if p] for word in words]
        return [w for w in out if w]

    def ipa_table(self, voice: str = "en-us") -> dict[str, str]:
        """IPA symbol -> espeak mnemonic for the language of `voice`, learnt from espeak-ng (see the module doc)."""
        language = str(voice).partition("+")[0]
        if language not in self._ipa_tables:
            with self._voice_session(language) as lib:
                ipa_words = self._text_to_phonemes(lib, _CALIBRATION_TEXT, ipa=True)
                mn_words = self._text_to_phonemes(lib, _CALIBRATION_TEXT, ipa=False)
            counts: dict[str, Counter] = defaultdict(Counter)
            for ipa_word, mn_word in zip(ipa_words, mn_words):
                if len(ipa_word) != len(mn_word):
                    continue
                for ipa, mn in zip(ipa_word, mn_word):
                    ipa, mn = ipa.lstrip("ˈˌ"), mn.lstrip(_MNEMONIC_STRESS)
                    if ipa and mn:
                        counts[unicodedata.normalize("NFC", ipa)][mn] += 1
            # several mnemonics can share an IPA name (en-us 'A:' and '0' are both ɑː): prefer the shortest, then
            # the most frequent, then the alphabetically first, so the table is the same on every run
            learnt = {ipa: min(c, key=lambda m: (len(m), -c[m], m)) for ipa, c in counts.items()}
            # espeak fuses a vowel with a following r or l into one phoneme (ɛɹ 'air', əl 'little'); as input
            # they must stay two phones, or "vˈɛɹi" would be read as v + air + i
            table = {
                ipa: mn for ipa, mn in learnt.items()
                if not (len(ipa) > 1 and ipa[-1] in "ɹl" and ipa[:-1] in learnt)
            }
            for ipa, mn in list(table.items()):
                if ipa.endswith("ː") and ipa[:-1] not in table:
                    table[ipa[:-1]] = mn
            for alias, targets in _IPA_ALIASES.items():
                target = next((t for t in targets if t in learnt), None)
                if alias not in table and target is not None:
                    table[alias] = learnt[target]
            self._ipa_tables[language] = table
        return dict(self._ipa_tables[language])

    def ipa_to_espeak(self, ipa: str, voice: str = "en-us") -> tuple[str, list[str]]:
        """Convert an IPA transcription to espeak mnemonics; returns (mnemonics, IPA phones as segmented).

        Stress marks ˈ ˌ are kept; length marks on already-long vowels, syllable dots and ties are dropped.
        Space-separated single phones (the BabySLM style, `aɪ b ə s`) form one word; otherwise spaces separate
        words (`həlˈoʊ wˈɜːld`). Words without stress marks get espeak-ng's default stress. Raises UserError for a
        symbol with no espeak-ng phoneme, naming it.
        """
        if not isinstance(ipa, str) or not ipa.strip():
            raise UserError("IPA transcription is empty; give phonemes such as 'b ɹ ɪ k'")
        table = self.ipa_table(voice)
        longest = max(len(k) for k in table)
        words: list[list[tuple[str, str, str]]] = []
        for token in unicodedata.normalize("NFC", ipa).split():
            word: list[tuple[str, str, str]] = []
            stress = ""
            i = 0
            while i < len(token):
                ch = token[i]
                if ch in _IPA_STRESS or ch in "',":
                    stress = _IPA_STRESS.get(ch, ch)
                    i += 1
                    continue
                for size in range(min(longest, len(token) - i), 0, -1):
                    piece = token[i:i + size]
                    if piece in table:
                        word.append((stress, piece, table[piece]))
                        stress = ""
                        i += size
                        break
                else:
                    if ch in _IPA_IGNORED:
                        i += 1
                        continue
                    known = " ".join(sorted(k for k in table if len(k) == 1))
                    raise UserError(
                        f"IPA {ipa!r}: symbol {ch!r} (U+{ord(ch):04X}) has no espeak-ng phoneme for voice "
                        f"{voice!r}; use one of: {known}"
                    )
            if word:
                words.append(word)
        if not words:
            raise UserError(f"IPA {ipa!r}: no phonemes found; give phonemes such as 'b ɹ ɪ k'")
        phones = [piece for word in words for _, piece, _ in word]
        if all(len(word) == 1 for word in words):
            words = [[p for word in words for p in word]]
        mnemonics = " ".join("".join(stress + mn for stress, _, mn in word) for word in words)
        return mnemonics, phones


_DEFAULT: Optional[EspeakTTS] = None


def default_tts() -> EspeakTTS:
    """The shared EspeakTTS on the wheel's library (created on first use)."""
    global _DEFAULT
    with _LOCK:
        if _DEFAULT is None:
            _DEFAULT = EspeakTTS()
        return _DEFAULT
