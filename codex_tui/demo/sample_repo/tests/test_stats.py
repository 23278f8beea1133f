import unittest

from textkit.stats import median, median_word_length, word_count


class WordCountTest(unittest.TestCase):
    def test_counts_words(self):
        self.assertEqual(word_count("a quick test"), 3)

    def test_empty_text_has_no_words(self):
        self.assertEqual(word_count(""), 0)


class MedianTest(unittest.TestCase):
    def test_odd_length(self):
        self.assertEqual(median([5, 1, 3]), 3)

    def test_even_length(self):
        self.assertEqual(median([4, 1, 3, 2]), 2.5)

    def test_empty_list_is_an_error(self):
        with self.assertRaises(ValueError):
            median([])

    def test_median_word_length(self):
        self.assertEqual(median_word_length("a quick test"), 4)


if __name__ == "__main__":
    unittest.main()
