"""Write trainlab/data/digits.npz, the embedded default dataset, from scikit-learn's copy.

Provenance: scikit-learn's `load_digits` (sklearn/datasets/data/digits.csv.gz) is the test set
of the UCI "Optical Recognition of Handwritten Digits" data (E. Alpaydin, C. Kaynak, 1998;
CC BY 4.0): 1797 images of 8x8 pixels with integer values 0..16, labels 0..9. The file keeps
them as uint8 arrays `images` (1797, 8, 8) and `targets` (1797,), in scikit-learn's order.
trainlab.data.datasets checks the arrays against DIGITS_SHA256 every time it loads them.

    pip install scikit-learn && python scripts/make_digits.py
"""
import hashlib
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

OUT = Path(__file__).resolve().parents[1] / "trainlab" / "data" / "digits.npz"

bunch = load_digits()
images, targets = bunch.images.astype(np.uint8), bunch.target.astype(np.uint8)
assert (images == bunch.images).all() and (targets == bunch.target).all()
np.savez_compressed(OUT, images=images, targets=targets)
print(f"{OUT}: sha256 of images + targets = {hashlib.sha256(images.tobytes() + targets.tobytes()).hexdigest()}")
