"""Apparent gender of each hand-annotated face in the dlib-faces test set, labelled by eye.

A person looked at a crop of every face box on 2026-11-27 and labelled it "man" or "woman"
from what the crop shows (hair, facial hair, clothing, the rest of the photo). These are
apparent-gender labels for a small test, not a statement about anyone's identity.

Crops were cut from ../shared/testdata/dlib-faces with a 60% margin on each side of the box
and scaled to 256 px; the whole photo was also viewed with the boxes numbered.

The faces are those that ``tests.annotations.read_annotations`` yields for ``training.xml``
and ``testing.xml`` (43 boxes over 9 photos; neither file marks any box ignore='1'). The key
of each face is (photo file name, top, left, width, height), i.e. ``(path.name, box.y,
box.x, box.w, box.h)``; the entries below follow the order that module yields them.

Uncertain (a best guess is still given, and its key is in ``UNCERTAIN``):

* 2008_001009.jpg (79, 145, 76, 76): a child of about 10, long hair and a pink bag strap;
  labelled "woman" as the nearest of the two labels for a girl.
"""

from __future__ import annotations

GENDERS: dict[tuple[str, int, int, int, int], str] = {
    # 2007_007763.jpg: elderly family group indoors, three men standing, four women.
    ("2007_007763.jpg", 90, 194, 37, 37): "man",  # glasses, checked shirt, standing
    ("2007_007763.jpg", 114, 158, 37, 37): "woman",  # glasses, pink blouse
    ("2007_007763.jpg", 89, 381, 45, 44): "man",  # bald, white shirt, far right
    ("2007_007763.jpg", 198, 94, 37, 37): "woman",  # red blouse, seated left
    ("2007_007763.jpg", 214, 178, 37, 37): "woman",  # grey hair, floral blouse, seated
    ("2007_007763.jpg", 86, 294, 37, 37): "man",  # glasses, striped polo shirt
    ("2007_007763.jpg", 233, 309, 45, 44): "woman",  # glasses, pearl earring, seated front
    # 2008_002079.jpg: restaurant table, four men and two women.
    ("2008_002079.jpg", 166, 407, 37, 37): "woman",  # glasses, brown hair, necklace
    ("2008_002079.jpg", 134, 122, 37, 37): "man",  # older, suit and tie
    ("2008_002079.jpg", 138, 346, 37, 37): "woman",  # big blonde hair, black top
    ("2008_002079.jpg", 171, 433, 53, 52): "man",  # suit and red tie, front right
    ("2008_002079.jpg", 134, 62, 37, 37): "man",  # short fair hair, white shirt
    ("2008_002079.jpg", 194, 41, 44, 44): "man",  # young, short hair, blue shirt
    # 2008_001009.jpg: a girl hugging a woman from behind.
    ("2008_001009.jpg", 79, 145, 76, 76): "woman",  # child (girl), glasses; UNCERTAIN
    ("2008_001009.jpg", 214, 125, 90, 91): "woman",  # bob haircut, cardigan, necklace
    # 2008_001322.jpg: two men in suits either side of a woman.
    ("2008_001322.jpg", 162, 104, 76, 76): "man",  # bald, dark suit
    ("2008_001322.jpg", 218, 232, 63, 63): "woman",  # long dark curly hair, blue jacket
    ("2008_001322.jpg", 155, 344, 90, 90): "man",  # grey hair, moustache, tie
    # 2008_002470.jpg: bar group, five men and one woman.
    ("2008_002470.jpg", 181, 274, 52, 53): "man",  # front, dark jacket
    ("2008_002470.jpg", 156, 55, 44, 44): "man",  # glasses, moustache, grey jacket
    ("2008_002470.jpg", 166, 146, 37, 37): "woman",  # short curly hair, white collar
    ("2008_002470.jpg", 55, 329, 44, 44): "man",  # pink shirt, red tie
    ("2008_002470.jpg", 74, 233, 44, 44): "man",  # blue shirt, black jacket
    ("2008_002470.jpg", 86, 178, 37, 37): "man",  # longish hair, black jacket
    # 2008_002506.jpg: three young men, close-up.
    ("2008_002506.jpg", 78, 329, 109, 109): "man",  # glasses, stubble, yellow Puma shirt
    ("2008_002506.jpg", 95, 224, 91, 91): "man",  # grimacing, checked shirt
    ("2008_002506.jpg", 65, 125, 90, 91): "man",  # goatee, white shirt
    # 2008_004176.jpg: five young women with two Elvis impersonators.
    ("2008_004176.jpg", 230, 206, 37, 37): "woman",  # kneeling in front, red top
    ("2008_004176.jpg", 118, 162, 37, 37): "woman",  # long black hair
    ("2008_004176.jpg", 82, 190, 37, 37): "woman",  # hair tied back, green top
    ("2008_004176.jpg", 78, 326, 37, 37): "man",  # Elvis impersonator, red jumpsuit
    ("2008_004176.jpg", 98, 222, 37, 37): "woman",  # blonde, white jacket
    ("2008_004176.jpg", 86, 110, 37, 37): "man",  # Elvis impersonator, gold jacket
    ("2008_004176.jpg", 102, 282, 37, 37): "woman",  # red T-shirt
    # 2008_007676.jpg: seven young women at a bar table.
    ("2008_007676.jpg", 62, 226, 37, 37): "woman",  # back row centre, earring
    ("2008_007676.jpg", 113, 194, 44, 44): "woman",  # long brown hair, lace-up top
    ("2008_007676.jpg", 130, 262, 37, 37): "woman",  # long black hair, light cardigan
    ("2008_007676.jpg", 134, 366, 37, 37): "woman",  # long blonde hair, far right
    ("2008_007676.jpg", 122, 314, 37, 37): "woman",  # beaded necklace
    ("2008_007676.jpg", 141, 107, 52, 53): "woman",  # blonde, front left
    ("2008_007676.jpg", 84, 137, 44, 44): "woman",  # dark hair with fringe, back left
    # 2009_004587.jpg: a tall man resting his arm on a woman's head.
    ("2009_004587.jpg", 46, 154, 75, 76): "man",  # receding hair, blue shirt
    ("2009_004587.jpg", 280, 266, 63, 63): "woman",  # long black hair with fringe
}

UNCERTAIN: frozenset[tuple[str, int, int, int, int]] = frozenset(
    {
        ("2008_001009.jpg", 79, 145, 76, 76),  # a child
    }
)
