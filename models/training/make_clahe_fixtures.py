"""Reference outputs of OpenCV's CLAHE for src/clahe.rs's tests (tests/fixtures/clahe/): the NIH pneumonia
fixture film as the reader's 224x224 grey input (tile-divisible) and a 230x201 crop of it (OpenCV pads
that with reflect-101 borders for the tile histograms), each with clip limit 2.0 and 8x8 tiles; and the
training preprocessing with CLAHE on (data.to_input) of the square one, as a 16-bit PNG (value x 65535), for
src/preprocess.rs's tests.

Usage (from the repository root): python models/training/make_clahe_fixtures.py
"""
import os

import cv2
import numpy as np

import data

OUT = "tests/fixtures/clahe"


def main():
    os.makedirs(OUT, exist_ok=True)
    film = cv2.imread("tests/fixtures/nih-pneumonia.jpg", cv2.IMREAD_GRAYSCALE)
    square = np.round(data.percentile_normalise(
        cv2.resize(film.astype(np.float32), (224, 224), interpolation=cv2.INTER_AREA)) * 255).astype(np.uint8)
    crop = film[140:341, 100:330]
    clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))
    for name, img in (("square", square), ("crop", crop)):
        cv2.imwrite(os.path.join(OUT, f"{name}-input.png"), img)
        cv2.imwrite(os.path.join(OUT, f"{name}-opencv.png"), clahe.apply(img))
    data.configure({"clahe": True})
    x = data.to_input(square)
    cv2.imwrite(os.path.join(OUT, "square-to-input.png"), np.round(x * 65535).astype(np.uint16))
    print("opencv", cv2.__version__, "->", OUT)


if __name__ == "__main__":
    main()
