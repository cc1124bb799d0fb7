"""The first phantom renderer (style ``classic``, format version 1), kept unchanged so that data
sets made with it, and models trained on them, can be reproduced exactly."""
