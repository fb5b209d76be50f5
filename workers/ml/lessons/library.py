"""The lesson library: well-known lesson structures and classroom activities, written by the team.

A plan is built by code from this library (structure chosen from the request, activities in the
structure's order, minutes by arithmetic); the language model only fills short, topic-specific slots
(``slots.py``). Every activity's text is a template over the request and those slots, so a plan's
facts come from the teacher's input or stay generic: nothing here names a number, a date or a
material a teacher did not ask for.

Templates use ``{topic}``, ``{question}``, ``{terms}`` (the key vocabulary, joined), ``{example}``,
``{task}``, ``{minutes}`` (of the section the activity is in) and ``{grade}`` ("grade 5").
"""
from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Activity:
    key: str
    name: str
    text: str  # a template: see the module docstring
    materials: tuple[str, ...] = ()


@dataclass(frozen=True)
class Phase:
    name: str
    share: float  # of the minutes left once every phase has its minimum
    activities: tuple[str, ...]  # Activity keys, in order


@dataclass(frozen=True)
class Structure:
    name: str
    summary: str
    phases: tuple[Phase, ...]


A = Activity
ACTIVITIES: dict[str, Activity] = {a.key: a for a in (
    # --- openings
    A("quick_write", "Quick write",
      "Quick write: students write for a minute on what they already know about {topic}, then share one idea "
      "with a partner.", ("Notebooks or scrap paper",)),
    A("question_hook", "Guiding question",
      "Post the guiding question \"{question}\" and ask students to predict an answer before the lesson begins.",
      ("The guiding question written on the board",)),
    A("think_pair_share", "Think-pair-share",
      "Think-pair-share on \"{question}\": students think alone, talk it through with a partner, then a few "
      "pairs share with the class.", ()),
    A("vocab_preview", "Vocabulary preview",
      "Preview the key vocabulary of {topic} ({terms}): students say each word aloud and sort the words they "
      "know from the ones they do not know yet.", ("Vocabulary cards: {terms}",)),
    # --- teaching
    A("worked_example", "Worked example",
      "Model a worked example, thinking aloud: {example} Name each step and show how it connects to {topic}.",
      ("The worked example written on the board or a slide",)),
    A("model_think_aloud", "Think-aloud",
      "Teach the key ideas of {topic} in short chunks, using the words {terms}, and pause after each chunk "
      "for students to restate it in their own words.", ()),
    A("mini_lesson", "Mini-lesson",
      "Mini-lesson: teach one skill of {topic} and model it on this example: {example} Students watch for the "
      "steps and note them.", ("The model example on the board or a slide",)),
    A("check_for_understanding", "Check for understanding",
      "Check for understanding: ask students to show on mini whiteboards how they would explain {topic} to a "
      "classmate, and reteach any step most of them miss.", ("Mini whiteboards and markers",)),
    # --- practice with help
    A("guided_examples", "Guided practice",
      "Work through two more examples of {topic} together: students try each step on mini whiteboards before "
      "the class compares answers.", ("Mini whiteboards and markers",)),
    A("partner_practice", "Partner practice",
      "In pairs, students practise {topic}: one explains a step while the other checks it against the model, "
      "then they swap roles. The teacher circulates and gives feedback.", ()),
    A("explore_investigate", "Explore",
      "In small groups, students investigate {topic} with a hands-on task or a set of examples, record what "
      "they notice, and write one question of their own.", ("A group recording sheet",)),
    A("card_sort", "Card sort",
      "Card sort: groups sort cards about {topic} into categories they choose, then explain their categories "
      "to another group.", ("Sets of cards about {topic}, one per group",)),
    A("explain_share", "Explain",
      "Groups share what they found; the teacher connects their findings to the key ideas of {topic} and the "
      "words {terms}, and models one case aloud: {example}", ("The example written on the board or a slide",)),
    # --- on their own
    A("independent_task", "Independent task",
      "Students work on their own: {task} The teacher confers with students who need help.",
      ("A task sheet for {topic}",)),
    A("apply_new_context", "Elaborate",
      "Students apply what they learned about {topic} to a new case: {task}", ("A task sheet for {topic}",)),
    A("writing_work_time", "Work time",
      "Work time: students write their own piece on {topic}: {task} The teacher confers with a few students "
      "about their drafts.", ("Writing paper or devices",)),
    A("peer_feedback", "Peer feedback",
      "Peer feedback: partners swap work on {topic} and give one strength and one next step, using a short "
      "checklist drawn from the lesson's objectives.", ("A peer feedback checklist",)),
    # --- closing
    A("exit_ticket", "Exit ticket",
      "Exit ticket: students answer \"{question}\" in two or three sentences and hand it in before they leave.",
      ("Exit ticket slips",)),
    A("three_two_one", "3-2-1 reflection",
      "3-2-1: students write three things they learned about {topic}, two words from the lesson they can use "
      "({terms}), and one question they still have.", ("Sticky notes or exit slips",)),
    A("share_circle", "Share",
      "Share: two or three students read or show their work on {topic}, and the class names what made it "
      "work.", ()),
    A("evaluate_check", "Evaluate",
      "Students show what they understand about {topic} by answering \"{question}\" on their own, then rate "
      "their confidence.", ("Exit ticket slips",)),
)}
del A

STRUCTURES: dict[str, Structure] = {s.name: s for s in (
    Structure(
        "gradual release",
        "I do, we do, you do: the teacher models, students practise with help, then on their own.",
        (Phase("Warm-up", 0.10, ("quick_write", "question_hook")),
         Phase("Direct instruction", 0.25, ("vocab_preview", "worked_example", "check_for_understanding")),
         Phase("Guided practice", 0.25, ("guided_examples", "partner_practice")),
         Phase("Independent practice", 0.25, ("independent_task",)),
         Phase("Closure", 0.15, ("exit_ticket",))),
    ),
    Structure(
        "5E",
        "Engage, explore, explain, elaborate, evaluate: students investigate before the ideas are named.",
        (Phase("Engage", 0.10, ("question_hook", "think_pair_share")),
         Phase("Explore", 0.25, ("explore_investigate",)),
         Phase("Explain", 0.20, ("explain_share", "model_think_aloud")),
         Phase("Elaborate", 0.30, ("apply_new_context", "card_sort")),
         Phase("Evaluate", 0.15, ("evaluate_check",))),
    ),
    Structure(
        "workshop",
        "Mini-lesson, work time, share: a short model, a long stretch of students' own work, then sharing.",
        (Phase("Mini-lesson", 0.20, ("mini_lesson", "vocab_preview")),
         Phase("Work time", 0.60, ("writing_work_time", "peer_feedback")),
         Phase("Share", 0.20, ("share_circle", "three_two_one"))),
    ),
)}

MIN_SECTION_MINUTES = 2

_SCIENCE = re.compile(r"scien|biolog|chemi|physic|earth|ecolog|astronom|geolog|environment|stem\b", re.I)
_WRITING = re.compile(r"\b(writ\w*|essay|paragraph|poem|poetry|haiku|story|stories|narrative|argument\w*|"
                      r"counterargument\w*|persuasi\w*|journal|letter|report|draft\w*|revis\w*|composition)\b", re.I)
_ELA = re.compile(r"english|ela\b|language arts|literacy|writing|literature|creative", re.I)


def choose_structure(req: dict) -> Structure:
    """Science and inquiry topics: 5E; writing in a language-arts subject: workshop; else gradual release.
    A lesson shorter than 15 minutes has no room for five phases: workshop (three)."""
    if req["duration_minutes"] < 15:
        return STRUCTURES["workshop"]
    if _SCIENCE.search(req["subject"]):
        return STRUCTURES["5E"]
    if _ELA.search(req["subject"]) and _WRITING.search(req["topic"]):
        return STRUCTURES["workshop"]
    return STRUCTURES["gradual release"]


def phase_minutes(structure: Structure, duration: int) -> list[tuple[str, int]]:
    """The structure's phases with their minutes: a minimum each, the rest by share with largest-remainder
    rounding (ties to the earlier, larger phase); they always add up to ``duration``."""
    phases = structure.phases
    rest = duration - MIN_SECTION_MINUTES * len(phases)
    if rest < 0:
        raise ValueError(f"{duration} minutes is too short for {len(phases)} phases")
    raw = [p.share * rest for p in phases]
    mins = [int(x) for x in raw]
    order = sorted(range(len(phases)), key=lambda i: (-(raw[i] - mins[i]), -phases[i].share, i))
    for i in order[: rest - sum(mins)]:
        mins[i] += 1
    out = [(p.name, m + MIN_SECTION_MINUTES) for p, m in zip(phases, mins)]
    assert sum(m for _, m in out) == duration
    return out


def activities_for(phase: Phase, minutes: int) -> list[Activity]:
    """A phase's activities; a short phase keeps only its first (one activity per 6 minutes or part)."""
    keep = max(1, min(len(phase.activities), -(-minutes // 6)))
    return [ACTIVITIES[k] for k in phase.activities[:keep]]


def fill(template: str, values: dict) -> str:
    return template.format(**values)
