"""A tiny, hand-written sentence-pair data set in the MSRP layout (both problem types).

Each base sentence yields a close paraphrase (label 1, score 4-5) and a
non-paraphrase that changes a fact or pairs it with another sentence (label 0,
score 0-2), so even a few dozen pairs carry a learnable signal.
"""

from __future__ import annotations

from pathlib import Path

HEADER = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String"

# (sentence, paraphrase, contradiction)
BASES = [
    ("The company said its profit rose 12 percent in the third quarter.",
     "Profit at the company rose 12 percent in the third quarter, it said.",
     "The company said its profit fell 40 percent in the first quarter."),
    ("Police arrested two men on Tuesday after the robbery in Boston.",
     "Two men were arrested by police on Tuesday following the Boston robbery.",
     "Police released three women on Friday after the protest in Denver."),
    ('The senator called the bill "a disaster for working families."',
     'The bill is "a disaster for working families," the senator said.',
     "The senator praised the bill as a victory for small businesses."),
    ("Shares of Microsoft closed up 2 percent at $27.50 on Nasdaq.",
     "Microsoft shares ended 2 percent higher at $27.50 on the Nasdaq.",
     "Shares of Oracle closed down 5 percent at $11.20 on Nasdaq."),
    ("The hurricane forced thousands of residents to leave their homes.",
     "Thousands of residents were forced from their homes by the hurricane.",
     "The drought forced farmers to sell most of their cattle."),
    ("He did not attend the meeting in Geneva last week.",
     "He skipped last week's meeting in Geneva.",
     "He attended the meeting in Geneva last week and spoke twice."),
    ("The museum will reopen in June after a two-year renovation.",
     "After a two-year renovation, the museum reopens in June.",
     "The museum will close in March for a five-year renovation."),
    ("Researchers found that the drug reduced heart attacks by 30 percent.",
     "The drug cut heart attacks by 30 percent, researchers found.",
     "Researchers found no link between the drug and heart attacks."),
    ("The airline cancelled 200 flights because of the snowstorm.",
     "Because of the snowstorm, the airline cancelled 200 flights.",
     "The railway added 15 trains because of the holiday rush."),
    ("Officials said the bridge would be closed until Monday.",
     "The bridge will stay closed until Monday, officials said.",
     "Officials said the tunnel opened early on Saturday."),
    ("The team won its fourth straight game on Sunday night.",
     "On Sunday night the team won a fourth game in a row.",
     "The team lost its first home game of the season on Sunday."),
    ("Prices of crude oil climbed above $40 a barrel in London.",
     "In London, crude oil prices rose above $40 a barrel.",
     "Prices of natural gas dropped below $3 in New York."),
    ("The judge delayed the trial until next month.",
     "The trial was postponed by the judge until next month.",
     "The judge dismissed the case against the former mayor."),
    ("About 5,000 workers went on strike at the car factory.",
     "Some 5,000 workers at the car factory went on strike.",
     "About 800 workers were hired at the new chip plant."),
    ("The president will visit Japan and China in November.",
     "In November the president is to visit Japan and China.",
     "The president cancelled his trip to Brazil in April."),
    ("Scientists discovered a new species of frog in the rainforest.",
     "A new frog species was discovered by scientists in the rainforest.",
     "Scientists warned that the desert lizard is nearly extinct."),
    ("The school board approved a budget of $1.2 billion.",
     "A $1.2 billion budget was approved by the school board.",
     "The city council rejected a budget of $900 million."),
    ("Fire destroyed three houses in the village early Saturday.",
     "Three houses in the village were destroyed by fire early Saturday.",
     "Floods damaged a school in the town late Thursday."),
    ("The bank raised interest rates by a quarter point.",
     "Interest rates were raised a quarter point by the bank.",
     "The bank left interest rates unchanged for a sixth month."),
    ("Voters in the state rejected the tax increase on Tuesday.",
     "On Tuesday the state's voters turned down the tax increase.",
     "Voters in the city approved a new stadium on Tuesday."),
    ("The singer cancelled her European tour because of illness.",
     "Illness forced the singer to cancel her European tour.",
     "The singer added ten dates to her Asian tour."),
    ("The software update fixes a security flaw in the browser.",
     "A browser security flaw is fixed by the software update.",
     "The software update adds a new game to the phone."),
    ("Two soldiers were killed in an attack near the border.",
     "An attack near the border killed two soldiers.",
     "Two soldiers were honoured at a ceremony in the capital."),
    ("The factory will cut 1,500 jobs over the next two years.",
     "Over the next two years, 1,500 jobs will go at the factory.",
     "The factory will add 300 jobs by the end of the year."),
]


def binary_rows() -> list[tuple[str, str, str, str, str]]:
    rows = []
    for i, (s, para, other) in enumerate(BASES):
        rows.append(("1", f"{1000 + i}", f"{2000 + i}", s, para))
        rows.append(("0", f"{3000 + i}", f"{4000 + i}", s, other))
    return rows


def graded_rows() -> list[tuple[str, str, str, str, str]]:
    rows = []
    n = len(BASES)
    for i, (s, para, other) in enumerate(BASES):
        rows.append((f"{4.2 + (i % 5) * 0.2:.1f}", f"{1000 + i}", f"{2000 + i}", s, para))
        rows.append((f"{1.0 + (i % 4) * 0.4:.1f}", f"{3000 + i}", f"{4000 + i}", s, other))
        rows.append((f"{(i % 3) * 0.3:.1f}", f"{5000 + i}", f"{6000 + i}", s, BASES[(i + 7) % n][0]))
    return rows


def msrp_text(rows) -> str:
    return HEADER + "\n" + "".join("\t".join(r) + "\n" for r in rows)


def write_msrp(path: Path, rows) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(msrp_text(rows), encoding="utf-8")
    return path
