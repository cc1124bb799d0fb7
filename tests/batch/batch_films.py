"""What the batch tests run on: how many phantom films and which output formats."""

N_FILMS = 40
FORMATS = ("json", "coco", "mask", "overlay")
