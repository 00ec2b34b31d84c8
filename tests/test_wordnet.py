"""WordNet read in place: a noun's other words and what it is a kind of, from the real
database files of `wordnet-base`."""

from __future__ import annotations

from weft import wordnet


def test_a_noun_is_found_in_any_case_and_in_the_plural() -> None:
    assert wordnet.lemma("Cats") == "cat"
    assert wordnet.lemma("berries") == "berry"
    assert wordnet.lemma("T-shirt") == "t-shirt"
    assert wordnet.lemma("ice cream") == "ice_cream"
    assert wordnet.lemma("xqzzy") is None


def test_a_word_relates_to_its_synonyms_then_its_hypernyms_in_order() -> None:
    assert wordnet.related("cat", depth=2) == ("true cat", "feline", "carnivore")
    assert wordnet.related("tabby")[:3] == ("tabby cat", "domestic cat", "cat")
    assert "bird" in wordnet.related("parrot")
    assert "musical instrument" in wordnet.related("trumpet", depth=5)


def test_a_phrase_wordnet_lacks_gathers_its_words_and_skips_prepositions() -> None:
    found = wordnet.related("sun behind cloud", depth=1)
    assert found == ("sun", "star", "cloud", "physical phenomenon")
    assert wordnet.related("xqzzy blorp") == ()


def test_the_first_sense_is_the_most_frequent_one() -> None:
    # "key": the most used sense is the metal device, not the musical key or the island
    assert wordnet.related("key", depth=1) == ("device",)
