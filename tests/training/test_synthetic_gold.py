"""The synthetic task's gold function cannot be farmed, and its held-out prompts are out of distribution."""

import random

import pytest

from training.pipelines import synthetic
from training.simulation import diversity, report

CATS = [{"role": "user", "content": "Write a happy sentence about cats."}]
GOOD = "Cats feel calm and lovely in the evening."


@pytest.mark.parametrize("bad", [
    "", ".", "   ",
    "Cats are happy happy happy happy.",                    # a repeated word
    "Cats are lovely lovely.",
    "Cats are happy, good, great, lovely and warm.",        # stacked adjectives
    "Cats are happy, warm and kind.",                       # three: the form RLHF used to collapse onto
    "happy good great lovely wonderful",                    # a bare list
    "Cats feel calm and lovely in the",                     # cut off
    "Cats feel calm and lovely in the evening. Cats feel calm and lovely in the evening.",
    "Catsly isr lovelyy.",                                  # garbled words
])
def test_gamed_and_broken_answers_lose_to_a_good_one(bad):
    assert synthetic.gold_score(CATS, GOOD) - synthetic.gold_score(CATS, bad) >= 1.0, synthetic.gold_parts(CATS, bad)
    assert synthetic.gold_compare(CATS, GOOD, bad)["winner"] == "a"


def test_every_adversarial_pair_is_won_by_the_good_answer_by_a_clear_margin():
    rows = synthetic.adversarial_pairs(60, seed=4)
    assert {r["kind"] for r in rows} == set(synthetic.ADVERSARIAL_KINDS) and len(rows) == 60 * 5
    for row in rows:
        gap = synthetic.gold_score(row["prompt"], row["good"]) - synthetic.gold_score(row["prompt"], row["bad"])
        assert gap >= 1.0, row


def test_more_positive_words_help_only_up_to_two_and_the_topic_and_a_detail_count():
    one, two, three = "Cats are lovely.", "Cats are lovely and warm.", "Cats are lovely, warm and kind."
    assert synthetic.gold_score(CATS, one) < synthetic.gold_score(CATS, two) > synthetic.gold_score(CATS, three)
    assert synthetic.gold_score(CATS, "Dogs are lovely and warm.") < synthetic.gold_score(CATS, two)  # off topic
    assert synthetic.gold_score(CATS, "Cats are lovely and warm today.") == synthetic.gold_score(CATS, two) + 0.5
    assert synthetic.gold_score(CATS, "Cats are sad and cold.") < synthetic.gold_score(CATS, "Cats are small.")
    # Different forms of a best answer tie: nothing rewards one wording over another.
    assert synthetic.gold_compare(CATS, "I think cats are kind and sweet today.", GOOD)["winner"] is None
    assert sum(synthetic.gold_parts(CATS, GOOD).values()) == synthetic.gold_score(CATS, GOOD)


def test_gold_writer_answers_vary_in_form_and_in_score():
    rng = random.Random(0)
    answers = [synthetic.make_response(rng, "cats", +1) for _ in range(300)]
    scores = {synthetic.gold_score(CATS, a) for a in answers}
    assert len(scores) >= 5 and max(scores) == 3.25 and min(scores) > 0
    starts = {a.split()[0] for a in answers}
    assert {"Cats", "I", "There", "It"} <= starts


def test_held_out_prompts_share_no_template_topic_or_text_with_training():
    train_templates, train_topics = synthetic.SPLITS["train"]
    assert not set(train_templates) & set(synthetic.HELDOUT_TEMPLATES)
    assert not set(train_topics) & set(synthetic.HELDOUT_TOPICS) and set(synthetic.TOPICS) <= set(train_topics)
    train, heldout = synthetic.prompt_texts("train"), synthetic.prompt_texts("heldout")
    assert len(train) == 12 * 60 and len(heldout) == 4 * 8 and not train & heldout
    # No held-out topic word occurs in any training prompt, and no training topic in a held-out prompt.
    train_words = {w for text in train for w in text.lower().rstrip(".?").split()}
    assert not {t.split()[-1] for t in synthetic.HELDOUT_TOPICS} & train_words
    for text in heldout:
        assert synthetic.topic_of(text) in synthetic.HELDOUT_TOPICS
        assert not any(f" {t}" in text for t in train_topics)
    # Each training topic's word is one of the task's words, so naming it is never "garbled".
    assert {t.split()[-1] for t in train_topics} <= synthetic.known_words()
    for text in train:
        assert synthetic.topic_of(text) in train_topics
    # What the loop and the scoring draw: each split stays inside its own texts.
    assert {synthetic.prompt_text(p) for p in synthetic.make_prompts(300, seed=1, split="train")} <= train
    assert synthetic.prompt_texts("basic") < train  # the row helpers' default: a part of training's
    drawn = {synthetic.prompt_text(p) for p in synthetic.make_prompts(300, seed=1, split="heldout")}
    assert drawn <= heldout and len(drawn) > 20
    with pytest.raises(ValueError, match="split"):
        synthetic.make_prompts(1, split="test")


def test_topic_of_matches_whole_words_only():
    assert synthetic.topic_of("Say something nice about the seaside.") == ""
    assert synthetic.topic_of("Give me a warm line about the hill.") == "the hill"
    assert synthetic.topic_of("Write one cheerful sentence about the sea.") == "the sea"


def test_distinct_n_and_self_bleu_on_fixed_strings():
    assert diversity.distinct_n(["a b c", "a b d"], 1) == pytest.approx(4 / 6)
    assert diversity.distinct_n(["a b c", "a b d"], 2) == pytest.approx(3 / 4)
    assert diversity.distinct_n(["a"], 2) is None
    same = ["cats are lovely and warm today ."] * 5
    assert diversity.self_bleu(same) == pytest.approx(1.0)
    assert diversity.distinct_n(same, 2) == pytest.approx(6 / 30)
    apart = ["cats are lovely today .", "the river runs fast", "music sounds so sweet at night", "bread is warm"]
    assert diversity.self_bleu(apart) < 0.3
    assert diversity.self_bleu(["one"]) is None
    # A hypothesis that copies a reference scores 1; one sharing nothing scores 0.
    assert diversity.bleu("a b c d e".split(), ["a b c d e".split()]) == pytest.approx(1.0)
    assert diversity.bleu("x y z".split(), ["a b c".split()]) == 0.0
    summary = diversity.diversity(["a b c", "a b c", "d e f"])
    assert summary["samples"] == 3 and summary["unique_share"] == pytest.approx(2 / 3)
    assert "distinct_2_known" not in summary


def test_distinct_2_leaves_out_the_bigrams_of_garbled_words():
    vocabulary = frozenset({"cats", "are", "warm", "kind"})
    texts = ["cats are warm .", "cats are kind .", "cats are wxrm ."]
    # Plain distinct-2 counts the garbled "wxrm" as two new bigrams: 7 distinct of 9.
    assert diversity.distinct_n(texts, 2) == pytest.approx(7 / 9)
    # Without them: (cats are) x3, (are warm), (warm .), (are kind), (kind .): 5 distinct of 7.
    assert diversity.distinct_2_in(texts, vocabulary) == pytest.approx(5 / 7)
    assert diversity.diversity(texts, vocabulary)["distinct_2_known"] == pytest.approx(5 / 7)
    assert diversity.distinct_2_in(["zz qq"], vocabulary) is None
    # Every word the gold writer uses is in the task's vocabulary, so its answers lose no bigram.
    gold = ["I think cats are kind and sweet today.", "There is something calm and lovely about the sea at night."]
    assert diversity.distinct_2_in(gold, synthetic.known_words()) == pytest.approx(diversity.distinct_n(gold, 2))


def loop_data(*, rm_in=0.95, rm_out=0.85, win_in=0.7, win_out=0.7, d2_sft=0.5, d2_rlhf=0.45, tied=5, judged=48,
              noise=0.0):
    return {
        "config": {"noise": noise}, "total_seconds": 600.0,
        "models": {"rlhf": {"metrics": {"kl": 0.2}}},
        "labeling": {"comparisons rlhf": {"by_kind": {"comparison": judged}, "ties": tied}},
        "scores": {
            "reward_accuracy": {"in_distribution": {"accuracy": rm_in, "pairs": 100},
                                "out_of_distribution": {"accuracy": rm_out, "pairs": 100}},
            "gold_win_rate": {"rlhf": {"win_rate": win_out}}, "gold_win_rate_in": {"rlhf": {"win_rate": win_in}},
            "diversity": {"sft": {"distinct_2": d2_sft}, "rlhf": {"distinct_2": d2_rlhf}},
        },
    }


def met(data: dict) -> dict:
    return {name: ok for name, (_, _, ok) in report.summary(data)["targets"].items()}


def test_a_target_is_met_only_when_the_out_of_distribution_figure_meets_it_too():
    assert all(met(loop_data()).values())
    assert not met(loop_data(rm_out=0.79))["reward model gold accuracy"]  # in distribution 0.95 is not enough
    assert not met(loop_data(rm_in=0.89))["reward model gold accuracy"]
    assert met(loop_data(rm_in=0.8, rm_out=0.7, noise=0.2))["reward model gold accuracy"]
    assert not met(loop_data(rm_in=0.8, rm_out=0.69, noise=0.2))["reward model gold accuracy"]
    assert not met(loop_data(win_out=0.6))["RLHF gold win rate vs SFT"]
    assert not met(loop_data(win_in=0.6))["RLHF gold win rate vs SFT"]
    missing = loop_data()
    del missing["scores"]["reward_accuracy"]["out_of_distribution"]
    assert not met(missing)["reward model gold accuracy"]  # no OOD figure: not met


def test_collapse_is_flagged_by_diversity_or_by_ties():
    assert report.summary(loop_data())["collapse_warnings"] == []
    collapsed = report.summary(loop_data(d2_rlhf=0.3, tied=39))
    assert len(collapsed["collapse_warnings"]) == 2
    assert not met(loop_data(d2_rlhf=0.39))["RLHF distinct-2 / SFT's"]
    assert not met(loop_data(tied=12))["round-2 comparisons all tied"]  # 25% is not under 25%
    assert met(loop_data(tied=11))["round-2 comparisons all tied"]
    table = report.table_text(loop_data(d2_rlhf=0.3))
    assert "WARNING collapse: rlhf's distinct-2 0.300 is under 0.8x sft's 0.500" in table
    # The garbling-free ratio is shown beside the target, and the target still judges plain distinct-2.
    data = loop_data(d2_rlhf=0.3)
    data["scores"]["diversity"]["sft"]["distinct_2_known"] = 0.4
    data["scores"]["diversity"]["rlhf"]["distinct_2_known"] = 0.34
    assert report.summary(data)["distinct_2_known_ratio"] == pytest.approx(0.85)
    assert not met(data)["RLHF distinct-2 / SFT's"]
    table = report.table_text(data)
    assert "distinct-2 of rlhf without the bigrams of garbled words" in table
    assert "RLHF distinct-2 / SFT's without garbled words (not a target: garbling counts as diversity)  0.850" in table


def test_gold_terms_say_where_a_models_score_comes_from():
    from training.simulation.scoring import gold_terms

    prompts = [CATS, CATS]
    texts = ["Cats are happy happy happy.", GOOD]
    terms = gold_terms(prompts, texts)
    assert sum(terms.values()) == pytest.approx(sum(synthetic.gold_score(p, t) for p, t in zip(prompts, texts)) / 2)
    assert terms["repeated"] == pytest.approx(-1.0) and terms["detail"] == pytest.approx(0.25)
    data = loop_data()
    data["scores"]["gold_terms"] = {"rlhf": terms}
    assert "where rlhf's gold score comes from (mean term, out of distribution)" in report.table_text(data)
    assert "repeated -1.00" in report.table_text(data)
