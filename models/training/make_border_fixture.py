"""A padded radiograph for src/border.rs's tests (tests/fixtures/border/): the Kermany normal fixture film
framed by near-black padding (levels 0-4, as JPEG or a scanner leaves it) of different widths on three
sides, and where models/training/data.py's flat_border says the radiograph is. The Rust test asserts the
same rectangle, so the reader trims exactly as training does.

Usage (from the repository root): python models/training/make_border_fixture.py
"""
import os

import cv2
import numpy as np

import data

OUT = "tests/fixtures/border"


def main():
    os.makedirs(OUT, exist_ok=True)
    film = cv2.imread("tests/fixtures/kermany-normal.jpeg", cv2.IMREAD_GRAYSCALE)
    top, bottom, left, right = 12, 9, 20, 0
    h, w = film.shape
    rng = np.random.default_rng(7)
    img = rng.integers(0, 5, (h + top + bottom, w + left + right)).astype(np.uint8)
    img[top:top + h, left:left + w] = film
    cv2.imwrite(os.path.join(OUT, "padded.png"), img)
    print("flat_border (top, bottom, left, right):", data.flat_border(img), "of", img.shape)


if __name__ == "__main__":
    main()
