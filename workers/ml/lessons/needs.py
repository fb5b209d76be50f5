"""Learners' needs named in a teacher's notes, and the differentiation each one gets.

``needs_in(notes)`` finds the needs a teacher wrote about (IEPs, English learners, dyslexia...);
``differentiation(req, slots)`` turns every one of them into a specific line, every time, plus a
support and an extension line for any class. The lesson checks use the same table the other way
round: a need in the notes with no line that ``addressed`` it fails the plan (``checks.needs``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Need:
    key: str
    label: str
    found: re.Pattern  # in the teacher's notes
    addressed: re.Pattern  # in a differentiation line
    line: str  # template over {topic}, {terms}, {question}


def _re(p: str) -> re.Pattern:
    return re.compile(p, re.I)


NEEDS: tuple[Need, ...] = (
    Need("iep", "students with an IEP",
         _re(r"\bIEPs?\b|individuali[sz]ed education|\b504\b|special (?:education|needs)|\bSEND?\b|\bEHCP\b"),
         _re(r"\bIEPs?\b|\b504\b|accommodation|special (?:education|needs)|\bSEND?\b|\bEHCP\b"),
         "Students with an IEP or 504 plan: follow each plan's accommodations (extra time, reduced length, "
         "read-aloud), give the task on {topic} in smaller steps with a checklist, and check in with them first."),
    Need("english_learners", "English learners",
         _re(r"English (?:language )?learners?|\bE[LS]Ls?\b|\bEALs?\b|\bELs\b|newcomers?|new to English|"
             r"bilingual|emergent bilingual|learning English|multilingual"),
         _re(r"English (?:language )?learners?|\bE[LS]Ls?\b|\bEAL\b|sentence frames?|bilingual|"
             r"home language|multilingual"),
         "English learners: give sentence frames for talking and writing about {topic}, a word bank of {terms} "
         "with pictures and home-language translations, and a partner who shares their language where possible."),
    Need("reading", "students who read below grade level or have dyslexia",
         _re(r"dyslexi\w*|below grade level|struggl\w* (?:with )?read\w*|reading (?:difficult\w*|support|level)|"
             r"weak readers?|reluctant readers?"),
         _re(r"dyslexi\w*|read(?:ing)? (?:aloud|support)|audio|below grade level|levell?ed text|struggling readers?"),
         "Students with dyslexia or who read below grade level: read texts and instructions aloud, give a "
         "shorter levelled text on {topic} in a clear font, and let them answer orally or with a scribe."),
    Need("attention", "students with ADHD or attention needs",
         _re(r"\bADH?D\b|attention (?:deficit|difficult\w*|needs|issues|span)|(?:trouble|difficulty) (?:focusing|paying "
             r"attention)|hyperactiv\w*|easily distracted|impulsiv\w*"),
         _re(r"\bADH?D\b|attention|focus|movement breaks?|chunk\w*|timer"),
         "Students with ADHD or attention needs: chunk the work on {topic} into short timed steps with a "
         "checklist, seat them near the teacher, and allow a movement break between phases."),
    Need("advanced", "advanced students",
         _re(r"advanced|gifted|talented|high[- ]achiev\w*|above grade level|early finishers?|\bG/?T\b|more able"),
         _re(r"advanced|gifted|extension|challenge|above grade level|early finishers?"),
         "Advanced students and early finishers: extend the task with a harder question on {topic}: "
         "\"{question}\" answered with evidence, or teach the key idea to a classmate."),
    Need("hearing", "students with hearing loss",
         _re(r"hearing|deaf|hard of hearing|cochlear"),
         _re(r"hearing|deaf|captions?|written instructions|visual cues?"),
         "Students with hearing loss: face the class when speaking, give written instructions and captions for "
         "any video about {topic}, and repeat classmates' answers."),
    Need("vision", "students with a visual impairment",
         _re(r"visual(?:ly)? impair\w*|low vision|blind|partially sighted|vision"),
         _re(r"visual(?:ly)? impair\w*|low vision|large print|braille|blind|enlarged|tactile|vision"),
         "Students with a visual impairment: give large-print or digital copies of every handout on {topic}, "
         "describe what is on the board aloud, and seat them where they see best."),
    Need("autism", "autistic students",
         _re(r"autis\w*|\bASD\b|asperger\w*"),
         _re(r"autis\w*|\bASD\b|visual schedule|routine|predictab\w*"),
         "Autistic students: show a visual schedule of the lesson's phases, warn before each change of activity, "
         "and give the option of working alone instead of in a group."),
    Need("anxiety", "anxious students",
         _re(r"anxi\w*|shy|selective mutism|nervous|worried"),
         _re(r"anxi\w*|shy|low-stakes|rehears\w*|choice of how"),
         "Anxious or shy students: let them rehearse answers with a partner before sharing, never call on them "
         "cold, and give a choice of how to share their work on {topic}."),
    Need("mobility", "students with a physical disability",
         _re(r"wheelchair|mobility|physical disabilit\w*|crutches|cerebral palsy"),
         _re(r"wheelchair|mobility|physical|accessible|reach"),
         "Students with a physical disability or who use a wheelchair: keep group areas accessible and materials "
         "within reach, and adapt any movement in the activities on {topic}."),
    Need("writing_motor", "students with dysgraphia or fine-motor needs",
         _re(r"dysgraphi\w*|fine[- ]motor|handwriting"),
         _re(r"dysgraphi\w*|fine[- ]motor|handwriting|typ(?:e|ing)|speech-to-text|scribe"),
         "Students with dysgraphia or fine-motor needs: let them type, dictate or use speech-to-text for written "
         "work on {topic}, and accept shorter written answers."),
    Need("math_support", "students with dyscalculia",
         _re(r"dyscalculi\w*|math(?:s)? anxiety|struggl\w* (?:with )?math\w*"),
         _re(r"dyscalculi\w*|math\w* anxiety|manipulatives?|number line|concrete"),
         "Students with dyscalculia or who find maths hard: give manipulatives and a number line, and a worked "
         "example of {topic} to keep beside them."),
    Need("absent", "students who missed earlier lessons",
         _re(r"\babsent\b|missed (?:the )?(?:last|previous|earlier)|new (?:student|arrival)s?"),
         _re(r"absent|missed|catch[- ]up|new students?"),
         "Students who missed earlier lessons: give a one-page catch-up summary of the key words ({terms}) and "
         "pair them with a classmate for the first activity."),
)


def needs_in(notes: str) -> list[Need]:
    return [n for n in NEEDS if notes and n.found.search(notes)]


def unaddressed(notes: str, lines: list[str]) -> list[str]:
    """The labels of the needs named in ``notes`` that no line of ``lines`` addresses."""
    text = " ".join(lines)
    return [n.label for n in needs_in(notes) if not n.addressed.search(text)]


def differentiation(req: dict, values: dict) -> list[str]:
    """A line for every need in the notes, then support and extension for the whole class."""
    lines = [n.line.format(**values) for n in needs_in(req.get("notes") or "")]
    lines.append(f"Support: give students who struggle the vocabulary ({values['terms']}) on a card and the worked "
                 f"example to follow, and check their first step on {values['topic']} before they go on.")
    if not any(n.key == "advanced" for n in needs_in(req.get("notes") or "")):
        lines.append(f"Extension: students who finish early answer \"{values['question']}\" with a new example of "
                     f"their own.")
    return lines
