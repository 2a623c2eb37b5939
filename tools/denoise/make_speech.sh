#!/bin/sh
# Writes engine/tests/fixtures/speech_16k.wav: a short English sentence from espeak-ng, 16 kHz,
# 16-bit mono (the encoder's rate), for the denoiser's SNR test. Committed, so tests and CI
# need no espeak-ng. Needs: apt-get install espeak-ng sox
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
espeak-ng -v en-us -s 150 -w "$tmp/raw.wav" "The quick brown fox jumps over the lazy dog near the river."
# 16 kHz mono 16-bit, peak at -3 dBFS, at most 2.8 s.
sox "$tmp/raw.wav" -r 16000 -c 1 -b 16 "$root/engine/tests/fixtures/speech_16k.wav" trim 0 2.8 norm -3
soxi "$root/engine/tests/fixtures/speech_16k.wav"
