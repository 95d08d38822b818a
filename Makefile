# Ember: build, run and test. `make help` lists the targets.
#
# Every target first runs `setup`, which installs what a fresh Debian or
# Ubuntu machine lacks (it names each package before installing it) and the
# pinned Rust toolchain, so `make run-bios` and `make test` work from a clone.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := iso
MAKEFLAGS += --no-print-directory

# sgdisk lives in /usr/sbin, which is not on every user's PATH.
export PATH := $(HOME)/.cargo/bin:$(PATH):/usr/sbin:/sbin

TOOLCHAIN := $(shell sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)
KERNEL_TARGET := x86_64-unknown-none
OUT := target/ember
KERNEL_ELF ?= target/$(KERNEL_TARGET)/release/kernel
# Every image carries its kernel packed: LZ4-compressed behind the unpacker
# (kernel/pack, kernel/unpack), because Limine reads the whole file at every
# boot and on a BIOS PC that costs about 0.1 ms per KiB.
UNPACKER_ELF := target/$(KERNEL_TARGET)/release/unpack
PACKER := target/debug/pack
# KERNEL_FILE puts a file on the image as /boot/kernel as it is, instead of
# $(KERNEL_ELF) packed: to compare with an unpacked kernel, or (the test
# runner) to check how a damaged one is reported.
KERNEL_FILE ?=
PACK_SOURCES := $(wildcard kernel/pack/src/*.rs kernel/unpack/src/*.rs) \
	kernel/pack/Cargo.toml kernel/unpack/Cargo.toml kernel/unpack/unpack.ld kernel/unpack/build.rs Cargo.lock
ISO ?= $(OUT)/ember.iso
HDD ?= $(OUT)/ember.hdd
HDD_SIZE_MIB ?= 64
LIMINE_CONF ?= limine.conf

# Limine: the pinned binary release, looked up in LIMINE_DIR, then the
# per-user cache, then a system install, else cloned into the cache. Its
# host tool (`limine`, for `limine bios-install`) is built from the release's
# limine.c beside the release, or, for a system directory, in the per-user
# cache ($(LIMINE_TOOL_CACHE)).
LIMINE_VERSION := 8.2.0
LIMINE_BRANCH := v$(LIMINE_VERSION)-binary
LIMINE_URL := https://github.com/limine-bootloader/limine.git
CACHE_HOME := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)
LIMINE_CACHE := $(CACHE_HOME)/ember/limine-v$(LIMINE_VERSION)
LIMINE_TOOL_CACHE := $(CACHE_HOME)/ember/limine-v$(LIMINE_VERSION)-tool
LIMINE_SYSTEM_DIRS := /usr/share/limine /usr/local/share/limine
LIMINE_FILES := limine-bios.sys limine-bios-cd.bin limine-uefi-cd.bin BOOTX64.EFI limine.c limine-bios-hdd.h Makefile
LIMINE_DIR_FILE := $(OUT)/limine-dir
LIMINE_TOOL_FILE := $(OUT)/limine-tool

# QEMU. KVM only where it is real hardware virtualization: a /dev/kvm backed
# by something other than kvm_intel/kvm_amd can be far slower than TCG.
QEMU := qemu-system-x86_64
MEMORY ?= 512M
ACCEL ?= $(shell if [ -r /dev/kvm ] && [ -w /dev/kvm ] && grep -qE '^kvm_(intel|amd) ' /proc/modules 2>/dev/null; then echo kvm; else echo tcg; fi)
HEADLESS ?= $(if $(DISPLAY)$(WAYLAND_DISPLAY),,1)
QEMU_DISPLAY := $(if $(filter 1 yes true,$(HEADLESS)),-display none,)
QEMU_RUN := $(QEMU) -m $(MEMORY) -accel $(ACCEL) -cdrom $(ISO) -boot d -serial mon:stdio $(QEMU_DISPLAY) $(QEMU_ARGS)

# OVMF (UEFI firmware for QEMU): code and variable-store pairs as the
# distributions ship them; set OVMF_CODE and OVMF_VARS to use others.
OVMF_PAIRS := \
	/usr/share/OVMF/OVMF_CODE_4M.fd:/usr/share/OVMF/OVMF_VARS_4M.fd \
	/usr/share/OVMF/OVMF_CODE.fd:/usr/share/OVMF/OVMF_VARS.fd \
	/usr/share/edk2/x64/OVMF_CODE.4m.fd:/usr/share/edk2/x64/OVMF_VARS.4m.fd \
	/usr/share/edk2/ovmf/OVMF_CODE.fd:/usr/share/edk2/ovmf/OVMF_VARS.fd

# Sets $code and $vars to an OVMF pair, or stops with how to get one.
define find_ovmf
code="$(OVMF_CODE)"; vars="$(OVMF_VARS)"; \
if [ -z "$$code" ]; then \
	for pair in $(OVMF_PAIRS); do \
		if [ -f "$${pair%%:*}" ] && [ -f "$${pair##*:}" ]; then code="$${pair%%:*}"; vars="$${pair##*:}"; break; fi; \
	done; \
fi; \
if [ -z "$$code" ] || [ ! -f "$$code" ] || [ ! -f "$$vars" ]; then \
	echo "error: no OVMF firmware found (needed for UEFI boots)." >&2; \
	echo "  Debian/Ubuntu: sudo apt-get install ovmf;  Fedora: sudo dnf install edk2-ovmf;  Arch: sudo pacman -S edk2-ovmf" >&2; \
	echo "  or point OVMF_CODE= and OVMF_VARS= at the firmware files." >&2; \
	exit 1; \
fi
endef

# Writes Limine's BIOS boot sector and stage 2 into image $(1) with the host
# tool that the `limine` target built; removes the image if that fails.
define bios_install
"$$(cat $(LIMINE_TOOL_FILE))" bios-install --quiet $(1) >$(1).install.log 2>&1 || { \
	sed 's/^/  | /' $(1).install.log >&2; rm -f $(1) $(1).install.log; \
	echo "error: \`limine bios-install $(1)\` failed (its output is above); the image was removed" >&2; \
	exit 1; }; \
rm -f $(1).install.log
endef

.PHONY: help setup kernel limine iso image hdd hdd-image run-bios run-uefi debug test test-matrix screenshot bench lint clean

help:
	@echo "Ember kernel: make targets"
	@echo "  make / make iso   build the kernel and the hybrid BIOS+UEFI ISO ($(ISO))"
	@echo "  make hdd          build a raw GPT disk image instead ($(HDD)), for a USB stick or disk"
	@echo "  make run-bios     boot the ISO in QEMU with SeaBIOS"
	@echo "  make run-uefi     boot the ISO in QEMU with OVMF (UEFI)"
	@echo "  make debug        boot (BIOS) paused with a GDB stub on :1234"
	@echo "  make test         host unit tests + every test kernel on BIOS and UEFI"
	@echo "  make test-matrix  boot the kernel from each medium on BIOS/UEFI, pc/q35, 64M/4G: a table"
	@echo "  make screenshot   boot, run help, colors and mem, save docs/screenshot.png"
	@echo "  make bench        console and allocator benchmarks on the host, boot time in QEMU, with ratios"
	@echo "  make lint         rustfmt check and clippy (kernel target and host)"
	@echo "  make clean        remove build output (the Limine cache stays)"
	@echo "Settings: HEADLESS=1  ACCEL=kvm|tcg  MEMORY=512M  QEMU_ARGS=...  LIMINE_DIR=...  OVMF_CODE=/OVMF_VARS="
	@echo "          FILTER=name (test, test-matrix)  HDD_SIZE_MIB=64 (hdd)"

# Installs missing Debian/Ubuntu packages and the pinned Rust toolchain, and
# warns when the disk is too full for a clean build and test run.
DISK_WANTED_MIB := 2048
setup:
	@missing=""; \
	command -v $(QEMU) >/dev/null || missing="$$missing qemu-system-x86"; \
	command -v xorriso >/dev/null || missing="$$missing xorriso"; \
	command -v sgdisk >/dev/null || missing="$$missing gdisk"; \
	command -v mformat >/dev/null && command -v mcopy >/dev/null || missing="$$missing mtools"; \
	ovmf=""; for pair in $(OVMF_PAIRS); do [ -f "$${pair%%:*}" ] && ovmf=yes; done; \
	[ -n "$$ovmf$(OVMF_CODE)" ] || missing="$$missing ovmf"; \
	command -v cc >/dev/null || missing="$$missing gcc libc6-dev"; \
	command -v git >/dev/null || missing="$$missing git"; \
	command -v rustup >/dev/null || command -v curl >/dev/null || missing="$$missing curl ca-certificates"; \
	if [ -n "$$missing" ]; then \
		if ! command -v apt-get >/dev/null; then \
			echo "error: missing packages:$$missing" >&2; \
			echo "  This machine has no apt-get; install their equivalents (see README.md, Prerequisites)." >&2; \
			exit 1; \
		fi; \
		sudo=""; if [ "$$(id -u)" != 0 ]; then sudo=sudo; fi; \
		echo "setup: installing missing packages:$$missing (apt-get$${sudo:+ via sudo})"; \
		$$sudo apt-get update -qq; \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@if ! command -v rustup >/dev/null; then \
		echo "setup: installing rustup (the Rust toolchain installer) into ~/.cargo"; \
		curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs \
			| sh -s -- -y --quiet --profile minimal --default-toolchain none --no-modify-path; \
	fi
	@stamp=target/.toolchain-$(TOOLCHAIN); \
	if [ ! -f "$$stamp" ]; then \
		echo "setup: installing Rust $(TOOLCHAIN) with the $(KERNEL_TARGET) target, clippy and rustfmt"; \
		rustup toolchain install $(TOOLCHAIN) --profile minimal --no-self-update >/dev/null; \
		rustup target add --toolchain $(TOOLCHAIN) $(KERNEL_TARGET) >/dev/null; \
		rustup component add --toolchain $(TOOLCHAIN) clippy rustfmt >/dev/null; \
		mkdir -p target && touch "$$stamp"; \
	fi
	@free=$$(df -Pk . | awk 'NR == 2 { print int($$4 / 1024) }'); \
	if [ "$$free" -lt $(DISK_WANTED_MIB) ]; then \
		echo "warning: only $$free MiB free on the disk holding this checkout; a clean build and" >&2; \
		echo "  'make test' write about 1.5 GiB, and a full disk fails them half-way (cargo: 'No space" >&2; \
		echo "  left on device'; xorriso: 'exceeds free space on media'). target/ can be deleted." >&2; \
	fi

kernel: setup
	cargo build --release -p kernel -p unpack --target $(KERNEL_TARGET)

# The packer and the unpacker, rebuilt only when their sources change: the
# test runner builds an image per test kernel.
$(PACKER) $(UNPACKER_ELF) &: $(PACK_SOURCES)
	cargo build -q -p pack
	cargo build -q --release -p unpack --target $(KERNEL_TARGET)

# Finds (or fetches) Limine and records its directory in $(LIMINE_DIR_FILE);
# builds its host tool and records that in $(LIMINE_TOOL_FILE). Each record is
# written beside and renamed into place: the test runner builds several
# images at a time, and none may read another's half-written file.
limine:
	@mkdir -p $(OUT); \
	usable() { \
		for f in $(LIMINE_FILES); do [ -f "$$1/$$f" ] || return 1; done; \
		grep -aq "Limine $(LIMINE_VERSION)" "$$1/limine-bios.sys"; \
	}; \
	dir=""; \
	if [ -n "$(LIMINE_DIR)" ]; then \
		usable "$(LIMINE_DIR)" || { \
			echo "error: LIMINE_DIR=$(LIMINE_DIR) does not hold the Limine $(LIMINE_VERSION) binary release" >&2; \
			echo "  (it needs $(LIMINE_FILES), from Limine $(LIMINE_VERSION))" >&2; exit 1; }; \
		dir="$(LIMINE_DIR)"; \
	elif usable "$(LIMINE_CACHE)"; then \
		dir="$(LIMINE_CACHE)"; \
	else \
		for d in $(LIMINE_SYSTEM_DIRS); do \
			if usable "$$d"; then dir="$$d"; break; fi; \
			[ -d "$$d" ] && echo "note: $$d is not the Limine $(LIMINE_VERSION) binary release; not using it"; \
		done; \
	fi; \
	if [ -z "$$dir" ]; then \
		echo "limine: fetching the Limine $(LIMINE_VERSION) binary release into $(LIMINE_CACHE)"; \
		rm -rf "$(LIMINE_CACHE).part"; \
		if git clone --quiet --depth 1 --branch $(LIMINE_BRANCH) $(LIMINE_URL) "$(LIMINE_CACHE).part" \
			&& usable "$(LIMINE_CACHE).part"; then \
			rm -rf "$(LIMINE_CACHE)"; mv "$(LIMINE_CACHE).part" "$(LIMINE_CACHE)"; dir="$(LIMINE_CACHE)"; \
		else \
			rm -rf "$(LIMINE_CACHE).part"; \
			echo "error: Limine $(LIMINE_VERSION) is not installed and could not be downloaded." >&2; \
			echo "  Get the binary release on a machine with network access:" >&2; \
			echo "    git clone --depth 1 --branch $(LIMINE_BRANCH) $(LIMINE_URL) limine-$(LIMINE_VERSION)" >&2; \
			echo "  then copy it to $(LIMINE_CACHE), or run make with LIMINE_DIR=/path/to/limine-$(LIMINE_VERSION)" >&2; \
			exit 1; \
		fi; \
	fi; \
	echo "$$dir" > $(LIMINE_DIR_FILE).$$$$; mv -f $(LIMINE_DIR_FILE).$$$$ $(LIMINE_DIR_FILE); \
	accepted() { [ -x "$$1" ] && [ "$$("$$1" --version 2>/dev/null | sed -n 1p)" = "Limine $(LIMINE_VERSION)" ]; }; \
	tooldir="$$dir"; \
	case " $(LIMINE_SYSTEM_DIRS) " in *" $$dir "*) tooldir="$(LIMINE_TOOL_CACHE)";; esac; \
	[ -w "$$dir" ] || tooldir="$(LIMINE_TOOL_CACHE)"; \
	if ! accepted "$$tooldir/limine"; then \
		echo "limine: building the Limine $(LIMINE_VERSION) host tool: make -C $$tooldir"; \
		log="$(OUT)/limine-tool.log"; \
		if { [ "$$tooldir" = "$$dir" ] || { mkdir -p "$$tooldir" \
				&& cp "$$dir/limine.c" "$$dir/limine-bios-hdd.h" "$$dir/Makefile" "$$tooldir/"; }; } >"$$log" 2>&1 \
			&& rm -f "$$tooldir/limine" \
			&& $(MAKE) -C "$$tooldir" limine >>"$$log" 2>&1; then \
			accepted "$$tooldir/limine" || { \
				echo "error: $$tooldir/limine was built but \`limine --version\` does not print \"Limine $(LIMINE_VERSION)\":" >&2; \
				"$$tooldir/limine" --version >&2 || true; \
				echo "  Remove it and the release in $$dir, and fetch the Limine $(LIMINE_VERSION) binary release again." >&2; \
				exit 1; }; \
		else \
			sed 's/^/  | /' "$$log" >&2; \
			echo "error: could not build the Limine host tool (\`make -C $$tooldir limine\` failed; its output is above)." >&2; \
			echo "  Every image needs it for \`limine bios-install\`. It is one C file: install a C compiler" >&2; \
			echo "  (Debian/Ubuntu: \`make setup\` installs gcc and libc6-dev) and make, and run make again." >&2; \
			exit 1; \
		fi; \
	fi; \
	rm -f "$(OUT)/limine-tool.log"; \
	echo "$$tooldir/limine" > $(LIMINE_TOOL_FILE).$$$$; mv -f $(LIMINE_TOOL_FILE).$$$$ $(LIMINE_TOOL_FILE)

iso: kernel
	@$(MAKE) image

# Assembles $(ISO) from $(KERNEL_ELF) and $(LIMINE_CONF): a hybrid image that boots as a CD on
# BIOS (El Torito) and UEFI, and, after `limine bios-install`, as a disk. The image gets the
# kernel packed, without its debug information and symbol table (GDB reads both from
# $(KERNEL_ELF), whose addresses are the same): Limine reads the whole file from the boot
# medium, which takes time at every boot. It reads a CD 32 KiB at a time, so the kernel's file
# starts on a 32 KiB boundary of the image: a hidden run of zeros (/boot/align, in no directory)
# pads it there, and a file that started mid-block would cost one read more (3.5 ms on QEMU's PC).
image: limine $(PACKER) $(UNPACKER_ELF)
	@dir="$$(cat $(LIMINE_DIR_FILE))"; \
	root="$(ISO).root"; \
	rm -rf "$$root"; mkdir -p "$$root/boot/limine" "$$root/EFI/BOOT"; \
	if [ -n "$(KERNEL_FILE)" ]; then cp "$(KERNEL_FILE)" "$$root/boot/kernel"; \
	else $(PACKER) $(KERNEL_ELF) $(UNPACKER_ELF) "$$root/boot/kernel"; fi; \
	cp $(LIMINE_CONF) "$$root/boot/limine/limine.conf"; \
	cp "$$dir/limine-bios.sys" "$$dir/limine-bios-cd.bin" "$$dir/limine-uefi-cd.bin" "$$root/boot/limine/"; \
	cp "$$dir/BOOTX64.EFI" "$$root/EFI/BOOT/"; \
	if [ -f "$$dir/BOOTIA32.EFI" ]; then cp "$$dir/BOOTIA32.EFI" "$$root/EFI/BOOT/"; fi; \
	: > "$$root.align"; \
	printf '4 /boot/limine/limine-uefi-cd.bin\n3 /boot/limine/limine-bios-cd.bin\n2 /boot/align\n1 /boot/kernel\n' \
		> "$$root.weights"; \
	build() { \
		xorriso -as mkisofs -R -r -J -b boot/limine/limine-bios-cd.bin \
			-no-emul-boot -boot-load-size 4 -boot-info-table -hfsplus -apm-block-size 2048 \
			--efi-boot boot/limine/limine-uefi-cd.bin -efi-boot-part --efi-boot-image \
			--protective-msdos-label -graft-points --sort-weight-list "$$root.weights" \
			-hide "$$root.align" -hide-joliet "$$root.align" -hide-hfsplus "$$root.align" \
			"$$root" /boot/align="$$root.align" -o $(ISO) >"$$root.log" 2>&1 \
			|| { cat "$$root.log" >&2; echo "error: xorriso could not build $(ISO)" >&2; exit 1; }; \
		lba=$$(xorriso -indev $(ISO) -find /boot/kernel -exec report_lba -- 2>/dev/null \
			| sed -n "s|^File data lba: *0 *, *\([0-9]*\) *,.*'/boot/kernel'$$|\1|p"); \
		[ -n "$$lba" ] || { echo "error: could not find /boot/kernel's sectors in $(ISO) (xorriso -find ... report_lba)" >&2; exit 1; }; \
	}; \
	build; \
	if [ $$((lba % 16)) -ne 0 ]; then \
		truncate -s $$(((16 - lba % 16) * 2048)) "$$root.align"; \
		build; \
		[ $$((lba % 16)) -eq 0 ] || { \
			echo "error: /boot/kernel starts at sector $$lba of $(ISO), not on a 32 KiB boundary, after padding" >&2; exit 1; }; \
	fi; \
	rm -rf "$$root" "$$root.log" "$$root.align" "$$root.weights"; \
	$(call bios_install,$(ISO)); \
	echo "image: $(ISO) (boots as a CD, a disk or a USB stick, on BIOS and UEFI)"

hdd: kernel
	@$(MAKE) hdd-image

# Assembles $(HDD) from $(KERNEL_ELF) and $(LIMINE_CONF): a raw disk image
# with a GPT and one partition, an EFI system partition (FAT32) holding
# EFI/BOOT/BOOTX64.EFI for UEFI and boot/limine/limine-bios.sys for BIOS,
# whose boot sector and stage 2 `limine bios-install` writes. The kernel goes
# on it packed, as on the ISO.
hdd-image: limine $(PACKER) $(UNPACKER_ELF)
	@for tool in sgdisk mformat mmd mcopy; do \
		command -v $$tool >/dev/null || { \
			echo "error: $$tool is missing; it comes with the Debian/Ubuntu packages gdisk and mtools" >&2; \
			echo "  (\`make setup\` installs them: sudo apt-get install gdisk mtools)" >&2; exit 1; }; \
	done; \
	[ "$(HDD_SIZE_MIB)" -ge 40 ] 2>/dev/null || { \
		echo "error: HDD_SIZE_MIB=$(HDD_SIZE_MIB): the disk image needs at least 40 (MiB) for a FAT32 partition" >&2; exit 1; }; \
	dir="$$(cat $(LIMINE_DIR_FILE))"; \
	part="$(HDD).part"; esp="$$part@@1M"; log="$(HDD).log"; \
	step() { \
		"$$@" >"$$log" 2>&1 || { \
			sed 's/^/  | /' "$$log" >&2; rm -f "$$part" "$$part.kernel" "$$log"; \
			echo "error: building $(HDD) failed at: $$*" >&2; exit 1; }; \
	}; \
	mkdir -p "$$(dirname $(HDD))"; rm -f $(HDD) "$$part"; \
	step truncate -s $(HDD_SIZE_MIB)M "$$part"; \
	esp_mib=$$(($(HDD_SIZE_MIB) - 2)); \
	step sgdisk --clear --new=1:1M:+$${esp_mib}M --typecode=1:ef00 --change-name=1:"EFI system partition" "$$part"; \
	step mformat -i "$$esp" -F -T $$((esp_mib * 2048)) -h 64 -s 32 -H 2048 -v EMBER ::; \
	step mmd -i "$$esp" ::/EFI ::/EFI/BOOT ::/boot ::/boot/limine; \
	step $(PACKER) $(KERNEL_ELF) $(UNPACKER_ELF) "$$part.kernel"; \
	step mcopy -i "$$esp" "$$part.kernel" ::/boot/kernel; \
	rm -f "$$part.kernel"; \
	step mcopy -i "$$esp" $(LIMINE_CONF) ::/boot/limine/limine.conf; \
	step mcopy -i "$$esp" "$$dir/limine-bios.sys" ::/boot/limine/; \
	step mcopy -i "$$esp" "$$dir/BOOTX64.EFI" ::/EFI/BOOT/; \
	if [ -f "$$dir/BOOTIA32.EFI" ]; then step mcopy -i "$$esp" "$$dir/BOOTIA32.EFI" ::/EFI/BOOT/; fi; \
	rm -f "$$log"; \
	$(call bios_install,"$$part"); \
	mv "$$part" $(HDD); \
	echo "hdd: $(HDD) (GPT disk image with an EFI system partition; boots on BIOS and UEFI)"

run-bios: iso
	@echo "QEMU (BIOS, $(ACCEL)): serial on this terminal; Ctrl-A X quits, Ctrl-A C toggles the monitor"
	$(QEMU_RUN)

run-uefi: iso
	@$(find_ovmf); \
	cp "$$vars" $(OUT)/ovmf-vars.fd; \
	echo "QEMU (UEFI, $(ACCEL)): serial on this terminal; Ctrl-A X quits, Ctrl-A C toggles the monitor"; \
	set -x; \
	$(QEMU_RUN) -drive if=pflash,format=raw,unit=0,readonly=on,file="$$code" \
		-drive if=pflash,format=raw,unit=1,file=$(OUT)/ovmf-vars.fd

debug: iso
	@echo "QEMU is paused with a GDB stub on localhost:1234. Attach with:"
	@echo "  gdb $(KERNEL_ELF) -ex 'target remote localhost:1234'"
	$(QEMU_RUN) -s -S

# The runner is built in the dev profile (optimised, see Cargo.toml): the
# host unit tests it runs then reuse its dependencies instead of building
# them a second time for release.
TEST_RUNNER = cargo run -q -p test-runner -- \
	--iso $(ISO) --hdd $(HDD) --kernel $(KERNEL_ELF) --accel $(ACCEL) --ovmf-code "$$code" --ovmf-vars "$$vars" \
	$(if $(FILTER),--filter "$(FILTER)")

# Builds the images while the host unit tests build in the background (their
# output in $(OUT)/host-tests-build.log; the runner reports any error when it
# runs them): the kernel's build ends on one crate and leaves a core idle.
# Then the runner builds the test kernels and boots everything.
test: setup
	@mkdir -p $(OUT); \
	cargo run -q -p test-runner -- --build-host-tests > $(OUT)/host-tests-build.log 2>&1 & host_tests=$$!; \
	if $(MAKE) iso && $(MAKE) hdd-image; then built=0; else built=$$?; fi; \
	wait $$host_tests || true; \
	exit $$built
	@$(find_ovmf); $(TEST_RUNNER)

# The real kernel from the ISO (CD, disk, USB) and the disk image (disk, USB),
# on BIOS and UEFI, pc and q35, 64 MiB and 4 GiB: a table of what booted.
test-matrix: iso
	@$(MAKE) hdd-image
	@$(find_ovmf); $(TEST_RUNNER) --matrix

# The README's picture: boots the kernel (BIOS), runs help, colors and mem,
# and saves the screen.
screenshot: iso
	@mkdir -p docs; $(find_ovmf); $(TEST_RUNNER) --screenshot $(CURDIR)/docs/screenshot.png

# The console and allocator benchmarks on the host, then the boot benchmark
# in QEMU (BIOS on two machines and UEFI: about two and a half minutes).
bench: iso
	cargo run --release -q -p bench
	@$(find_ovmf); $(TEST_RUNNER) --bench-boot

lint: setup
	cargo fmt --all --check
	cargo clippy -p kernel -p look -p unpack --target $(KERNEL_TARGET) -- -D warnings
	cargo clippy -p test-kernels --target $(KERNEL_TARGET) --lib --tests -- -D warnings
	cargo clippy -p kernel -p look -p unpack --lib --tests -- -D warnings
	cargo clippy -p test-runner -p bench -p pack --all-targets -- -D warnings

clean:
	cargo clean
	@echo "clean: the Limine cache ($(LIMINE_CACHE)) is kept"
