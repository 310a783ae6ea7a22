"""Lexicon sentiment: concrete sentences, values computed from the lexicon by hand."""
import pytest

from models.sentiment import score, terms


@pytest.mark.parametrize("text, expected", [
    ("I love this video", 1.0),                 # love 1.0
    ("good", 0.6),
    ("very good", 0.9),                         # 0.6 * 1.5
    ("not good", -0.45),                        # 0.6 * -0.75
    ("I do not really like it", -0.675),        # like 0.6 * 1.5 * -0.75 (negator reach 3)
    ("not, good", 0.6),                         # punctuation ends the negation
    ("this is not the kind of video I like", 0.6),  # negator too far away (more than 3 tokens)
    ("good but boring", 0.0),                   # (0.6 - 0.6) / 2
    ("awesome!! but a bit boring", 0.2),        # (1.0 - 0.6) / 2
    ("太棒了，爱了爱了", 1.0),
    ("好看", 0.6),
    ("不好看", -0.6),                            # longest match: 不好 (-0.6), then 看
    ("不错", 0.6),                               # longest match: 不错 is positive
    ("不喜欢，太无聊", -0.75),                    # (-0.6 + -0.9) / 2
    ("垃圾视频，差评", -1.0),
    ("好难看", -1.0),                            # 好 intensifies 难看: -1.2 capped to -1
    ("没意思", -0.6),                            # 没意思 is an entry (longest match beats 没)
    ("👍👍", 1.0),
    ("😂", 0.6),
    ("👎😡", -1.0),
    ("❤️ 但是有点无聊", 0.2),                     # (1.0 - 0.6) / 2
    ("", 0.0),
    (None, 0.0),
    ("视频 12345", 0.0),
])
def test_scores(text, expected):
    assert score(text) == pytest.approx(expected, abs=1e-12)


def test_terms_show_what_was_matched():
    assert terms("not very good, 不喜欢") == [("good", -0.675), ("喜欢", -0.6)]
    assert terms("YYDS 绝了") == [("yyds", 1.0), ("绝了", 1.0)]


def test_score_is_bounded():
    assert score("very very amazing love love perfect 太棒 超级喜欢 👍") == 1.0
    assert -1.0 <= score("not terrible, not awful, never bad") <= 1.0
