#!/bin/sh
# Build the mlx-stt acceptance folder: 49 short English recordings made with
# espeak-ng (several voices and speeds, varied sentences) stored as WAV (16-bit
# and float, mono and stereo, 16 / 22.05 / 44.1 / 48 kHz), FLAC, OGG/Vorbis
# and MP3, plus one corrupt file; DIR.truth.tsv (beside the folder) lists
# file -> spoken text.
#   bench/stt/make_folder.sh [DIR]      (default /work/models-local/stt-folder)
# Needs espeak-ng and python3 with numpy, scipy and soundfile.
set -eu
DIR=${1:-/work/models-local/stt-folder}
mkdir -p "$DIR"
rm -f "$DIR"/*.wav "$DIR"/*.flac "$DIR"/*.ogg "$DIR"/*.mp3 "$DIR"/truth.tsv "$DIR.truth.tsv"
exec python3 - "$DIR" <<'PY'
import os, subprocess, sys, tempfile
import numpy as np, soundfile as sf
from scipy.signal import resample_poly

out = sys.argv[1]
sentences = [
    "The quick brown fox jumps over the lazy dog.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "The weather today is sunny with a light breeze from the west.",
    "We will meet at the train station at half past nine tomorrow morning.",
    "Artificial intelligence is changing the way we write software.",
    "She sells sea shells by the sea shore.",
    "The museum opens at ten and closes at six on weekdays.",
    "Turn left at the second traffic light and park behind the library.",
    "My favourite book tells the story of a sailor lost at sea.",
    "The committee approved the new budget after a long discussion.",
    "Coffee is grown in many countries near the equator.",
    "He forgot his umbrella and got completely soaked in the rain.",
    "The children built a sandcastle with towers and a deep moat.",
    "Please remember to save your work before closing the program.",
    "The orchestra played a beautiful symphony last night.",
    "Our flight was delayed by two hours because of the storm.",
    "A good night's sleep helps you concentrate during the day.",
    "The recipe needs three eggs, a cup of flour and some milk.",
    "Mountains covered in snow rose high above the quiet valley.",
    "The doctor told him to drink more water and rest for a week.",
    "Every spring the garden fills with tulips and daffodils.",
    "The bank will be closed on Monday for the public holiday.",
    "Learning a new language takes patience and daily practice.",
    "The old lighthouse still guides ships safely into the harbour.",
    "Could you please send me the report by Friday afternoon?",
    "The cat slept all afternoon in a warm patch of sunlight.",
    "Engineers are testing the bridge before it opens to traffic.",
    "Fresh bread from the bakery smells wonderful in the morning.",
    "The team celebrated their victory with a big dinner.",
    "Rivers carry water from the mountains down to the ocean.",
    "I would like a table for two near the window, please.",
    "The students listened carefully while the teacher explained the problem.",
    "Bright stars filled the sky on a clear and cold winter night.",
    "The new phone has a larger screen and a better camera.",
    "Farmers harvest wheat at the end of the summer.",
    "The meeting has been moved to the large conference room.",
    "Reading before bed is a relaxing way to end the day.",
    "The painter mixed blue and yellow to make a bright green.",
    "Thousands of people ran the city marathon on Sunday.",
    "Keep the medicine in a cool and dry place.",
    "The library has thousands of books about history and science.",
    "A gentle wind moved the leaves of the tall oak tree.",
    "The train to London leaves from platform four.",
    "Please turn off the lights when you leave the room.",
    "Scientists discovered a new species of frog in the rainforest.",
    "The market sells fruit, vegetables, cheese and fresh fish.",
    "He practised the piano for an hour every evening.",
    "The package should arrive within three working days.",
    "Winter evenings are perfect for hot soup and a good film.",
]
voices = ["en-us", "en-gb", "en-gb-scotland", "en-029", "en-gb-x-rp", "en-us+f3", "en-gb+f2", "en-us+m3"]
speeds = [140, 155, 170, 185]
# (extension, rate, channels, soundfile format, subtype)
kinds = [
    ("wav", 16000, 1, "WAV", "PCM_16"), ("wav", 22050, 2, "WAV", "PCM_16"), ("wav", 44100, 1, "WAV", "FLOAT"),
    ("flac", 16000, 1, "FLAC", "PCM_16"), ("flac", 48000, 2, "FLAC", "PCM_24"), ("ogg", 22050, 1, "OGG", "VORBIS"),
    ("ogg", 44100, 2, "OGG", "VORBIS"), ("mp3", 16000, 1, "MP3", "MPEG_LAYER_III"), ("mp3", 44100, 2, "MP3", "MPEG_LAYER_III"),
]
truth = []
with tempfile.TemporaryDirectory() as tmp:
    for i in range(49):
        text = sentences[i] if i % 3 else sentences[i] + " " + sentences[(i * 7 + 3) % len(sentences)]
        voice, speed = voices[i % len(voices)], speeds[i % len(speeds)]
        w = os.path.join(tmp, "s.wav")
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", w, text], check=True)
        x, sr = sf.read(w, dtype="float32")
        ext, rate, ch, fmt, sub = kinds[i % len(kinds)]
        g = np.gcd(rate, sr)
        y = resample_poly(x, rate // g, sr // g).astype(np.float32) if rate != sr else x
        y = np.clip(y, -1, 1)
        if ch == 2:
            y = np.stack([y, 0.8 * y], axis=1)
        name = f"clip{i:02d}_{voice.replace('+', '_')}.{ext}"
        sf.write(os.path.join(out, name), y, rate, format=fmt, subtype=sub)
        truth.append((name, text))
# the corrupt one: a FLAC header followed by noise bytes
rng = np.random.default_rng(7)
with open(os.path.join(out, "clip49_corrupt.flac"), "wb") as f:
    f.write(b"fLaC" + rng.integers(0, 256, 6000, dtype=np.uint8).tobytes())
with open(out.rstrip("/") + ".truth.tsv", "w") as f:
    for n, t in truth:
        f.write(f"{n}\t{t}\n")
print(f"{len(truth)} recordings + 1 corrupt file in {out}")
PY
