import unittest

from textkit.slug import slugify


class SlugifyTest(unittest.TestCase):
    def test_lowercases_and_joins(self):
        self.assertEqual(slugify("Hello, World!"), "hello-world")

    def test_strips_accents(self):
        self.assertEqual(slugify("Crème brûlée"), "creme-brulee")

    def test_custom_separator(self):
        self.assertEqual(slugify("a b c", sep="_"), "a_b_c")


if __name__ == "__main__":
    unittest.main()
