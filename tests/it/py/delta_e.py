"""Mean and max CIEDE2000 between two sRGB images: delta_e.py A.png B.png.

Both are read with Pillow as 8-bit sRGB, taken to CIELAB (D65) by
colour-science, compared with colour-science's CIE 2000 formula. Prints
"mean max".
"""
import sys
import warnings

warnings.filterwarnings("ignore")  # colour-science without matplotlib
import colour  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

a, b = (np.asarray(Image.open(p).convert("RGB"), dtype=np.float64) / 255 for p in sys.argv[1:3])
assert a.shape == b.shape, (a.shape, b.shape)
lab = [colour.XYZ_to_Lab(colour.sRGB_to_XYZ(x)) for x in (a, b)]
de = colour.delta_E(lab[0], lab[1], method="CIE 2000")
print(f"{de.mean():.4f} {de.max():.4f}")
