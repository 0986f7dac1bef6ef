#!/usr/bin/env python3
"""make_audio.py - the speech benchmark recording: about five minutes of
English synthesized with espeak-ng from known sentences (several voices and
speeds, short pauses between sentences), written as 16 kHz mono s16 WAV with
its reference transcript.

Output directory: $BENCH_AUDIO_DIR or /work/models-local/bench-audio (never
committed).  Files: speech5min.wav, speech5min.txt (reference, one sentence a
line), speech5min.json (per sentence: voice, speed, start, end).

Usage: python3 bench/stt/make_audio.py [--seconds 300]
"""
import argparse
import json
import os
import subprocess
import tempfile

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

SENTENCES = [
    "The quarterly report shows that sales grew by twelve percent in the northern region.",
    "Please remember to lock the back door before you leave the office tonight.",
    "Our team will meet again on Thursday morning to review the new design.",
    "The train to the city was delayed because of heavy snow on the tracks.",
    "She opened the window and listened to the birds singing in the garden.",
    "We need to finish the budget before the end of the month.",
    "The library closes at six o'clock on weekdays and at noon on Saturday.",
    "He bought a loaf of bread, a dozen eggs, and a bottle of milk.",
    "The engineers found a small crack in the wall of the old bridge.",
    "Could you send me the slides from yesterday's presentation?",
    "The children played football in the park until it started to rain.",
    "A good night's sleep is important for your health and your mood.",
    "The museum has a large collection of paintings from the last century.",
    "I think we should ask the customer what they really want.",
    "The weather forecast says it will be sunny and warm all weekend.",
    "My brother moved to a small town near the coast last summer.",
    "The software update fixed several bugs and made the program faster.",
    "Every morning she walks her dog along the river before breakfast.",
    "The committee approved the plan after a long and careful discussion.",
    "Turn left at the next corner and the station will be on your right.",
    "We are looking for a volunteer to organize the summer festival.",
    "The price of coffee has gone up again this year.",
    "He spent the whole afternoon fixing the bicycle in the garage.",
    "The doctor told him to drink more water and to walk every day.",
    "Our new office is on the third floor of the building across the street.",
    "The students wrote a short essay about the history of their town.",
    "It is hard to concentrate when the phone keeps ringing.",
    "The company plans to open two new stores in the spring.",
    "She learned to play the piano when she was only seven years old.",
    "The meeting was moved to the large conference room on the first floor.",
    "Fresh vegetables from the market taste much better than frozen ones.",
    "The pilot announced that the plane would land twenty minutes early.",
    "We should back up all of our files before we change the server.",
    "The old house at the end of the road has been empty for years.",
    "Thank you for your patience while we look into this problem.",
    "The river flooded the fields after three days of heavy rain.",
    "He always reads the newspaper while he drinks his morning tea.",
    "The new manager wants everyone to share their ideas openly.",
    "The baker starts work at four in the morning to prepare the bread.",
    "Please write your name and address clearly on the form.",
    "The concert was so popular that all the tickets sold out in an hour.",
    "Scientists are studying how the climate affects the growth of forests.",
    "I will call you back as soon as I get home from work.",
    "The hotel room had a beautiful view of the mountains and the lake.",
    "Our neighbors are planting a vegetable garden in their back yard.",
    "The teacher asked the class to open their books to page forty.",
    "A strong wind blew the leaves across the empty parking lot.",
    "We decided to take the bus because the car would not start.",
    "The restaurant on the corner serves the best soup in the city.",
    "She keeps a small notebook in her bag to write down new ideas.",
    "The factory produces more than a thousand chairs every week.",
    "Please turn off the lights and close the door when you leave.",
    "The farmers hope for rain before the end of the dry season.",
    "He found his keys under a pile of papers on the kitchen table.",
    "The project will take about six months to complete.",
    "Most people in the village know each other by name.",
    "The store will be closed on Monday for the public holiday.",
    "They watched the sun go down from the top of the hill.",
    "Our goal is to reduce the waiting time for every customer.",
    "The cat slept all afternoon in a warm spot by the window.",
    "Remember to bring a warm coat because the evenings are cold.",
    "The city council will vote on the new parking rules next week.",
    "He wrote a long letter to his grandmother about his travels.",
    "The battery in my phone lasts for almost two days.",
    "We walked along the beach and collected shells in a small bucket.",
    "The final exam covers everything we studied this semester.",
    "The bakery sells fresh bread, cakes, and cookies every day.",
    "Please check the spelling of every name on the guest list.",
    "A small boat sailed slowly across the calm blue water.",
    "The lecture on modern art lasted for almost two hours.",
]

VOICES = [("en-us", 165), ("en-gb", 150), ("en-us", 185), ("en-gb-x-rp", 160), ("en-029", 155),
          ("en-gb-scotland", 170), ("en-us", 140)]
SR = 16000


def say(text, voice, speed):
    with tempfile.NamedTemporaryFile(suffix=".wav") as t:
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", t.name, text], check=True)
        x, sr = sf.read(t.name, dtype="float64")
    if x.ndim > 1:
        x = x.mean(axis=1)
    g = np.gcd(SR, sr)
    return resample_poly(x, SR // g, sr // g)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=300.0)
    ap.add_argument("--out", default=os.environ.get("BENCH_AUDIO_DIR", "/work/models-local/bench-audio"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(7)
    pieces, meta, ref = [], [], []
    t = 0.0
    i = 0
    while t < args.seconds:
        text = SENTENCES[i % len(SENTENCES)]
        voice, speed = VOICES[i % len(VOICES)]
        x = say(text, voice, speed)
        pause = np.zeros(int(SR * rng.uniform(0.3, 0.8)))
        meta.append({"text": text, "voice": voice, "speed": speed, "start": round(t, 3),
                     "end": round(t + len(x) / SR, 3)})
        ref.append(text)
        pieces += [x, pause]
        t += (len(x) + len(pause)) / SR
        i += 1
    y = np.concatenate(pieces)
    y = 0.9 * y / max(1e-9, np.abs(y).max())
    wav = os.path.join(args.out, "speech5min.wav")
    sf.write(wav, y, SR, subtype="PCM_16")
    with open(os.path.join(args.out, "speech5min.txt"), "w") as f:
        f.write("\n".join(ref) + "\n")
    with open(os.path.join(args.out, "speech5min.json"), "w") as f:
        json.dump({"seconds": len(y) / SR, "rate": SR, "sentences": meta}, f, indent=1)
    print(f"{wav}: {len(y) / SR:.1f} s, {len(ref)} sentences")


if __name__ == "__main__":
    main()
