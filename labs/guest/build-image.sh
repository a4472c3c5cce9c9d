#!/usr/bin/env bash
# Build the small guest that tenet's compute service boots, from Debian packages only:
#   vmlinuz      Debian's 6.1 kernel (linux-image-6.1.0-N-amd64, newest that apt knows)
#   initrd.img   busybox-static initramfs (cpio newc + gzip): virtio modules from the same
#                kernel package, DHCP on eth0, TCP responder on port 80, TCP echo on
#                port 81, shell on ttyS0
#                (guest files: labs/guest/rootfs/; ethtool + its libraries from Debian too)
#   disk.qcow2   a blank 64 MiB qcow2 disk (the guest does not use it; block migration needs one)
# Usage: labs/guest/build-image.sh [OUTDIR]      (default: <repo>/target/guest)
# Needs: apt-get with package lists (apt-get update), dpkg-deb, tar, cpio, gzip, qemu-img.
# Idempotent: a step is skipped when its output exists and is newer than this script and
# labs/guest/rootfs/; the disk is created only when missing. Already built: well under 1 s.
# Environment: TENET_GUEST_KERNEL_PKG=linux-image-6.1.0-N-amd64 pins the kernel package;
#              TENET_GUEST_DISK_SIZE (default 64M); TENET_GUEST_ETHTOOL=0 leaves ethtool out.
set -euo pipefail

SCRIPT=$(readlink -f "${BASH_SOURCE[0]}")
HERE=$(dirname "$SCRIPT")
REPO=$(cd "$HERE/../.." && pwd)
OVERLAY=$HERE/rootfs
OUT=${1:-$REPO/target/guest}
DISK_SIZE=${TENET_GUEST_DISK_SIZE:-64M}
WITH_ETHTOOL=${TENET_GUEST_ETHTOOL:-1}

# virtio modules in load order (busybox insmod does not resolve dependencies).
MODULES=(virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci
         failover net_failover virtio_net virtio_blk)

log() { printf 'build-image: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
CACHE=$OUT/cache

# Several callers (tests) may build at once: one at a time.
exec 9>"$OUT/.lock"
flock 9

# The newest of this script and the guest files: outputs older than it are rebuilt.
STAMP=$OUT/.sources-stamp
newest=$(find "$SCRIPT" "$OVERLAY" -printf '%T@ %p\n' | sort -n | tail -n1 | cut -d' ' -f2-)
touch -r "$newest" "$STAMP"
fresh() { [ -s "$1" ] && [ "$1" -nt "$STAMP" ]; }

summary() {
  echo "tenet guest in $OUT:"
  local f
  for f in vmlinuz initrd.img disk.qcow2; do
    printf '  %-11s %8s' "$f" "$(du -h --apparent-size "$OUT/$f" | cut -f1)"
    case "$f" in
      vmlinuz) printf '  kernel %s\n' "$(cat "$OUT/kernel-release" 2>/dev/null || echo '?')" ;;
      disk.qcow2) printf '  (%s virtual, %s on disk)\n' "$DISK_SIZE" "$(du -h "$OUT/$f" | cut -f1)" ;;
      *) echo ;;
    esac
  done
}

need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found (apt-get install $2)"; }

# --- apt-get download into the cache (skipped when the candidate .deb is there) ------
APT_OPTS=(-q)
[ "$(id -u)" -ne 0 ] || APT_OPTS+=(-o APT::Sandbox::User=root)

deb_of() { # PACKAGE -> path of its candidate .deb in the cache (downloaded if missing)
  local pkg=$1 uri name
  uri=$(apt-get "${APT_OPTS[@]}" download --print-uris "$pkg" 2>/dev/null | head -n1) || true
  [ -n "$uri" ] || die "apt does not know package $pkg (run apt-get update?)"
  name=$(awk '{print $2}' <<<"$uri")
  if [ ! -s "$CACHE/$name" ]; then
    log "apt-get download $pkg"
    rm -f "$CACHE/${pkg}_"*.deb
    (cd "$CACHE" && apt-get "${APT_OPTS[@]}" download "$pkg" >/dev/null) ||
      die "apt-get download $pkg failed"
    [ -s "$CACHE/$name" ] || die "apt-get download $pkg: $name missing"
  fi
  echo "$CACHE/$name"
}

# --- kernel + initramfs (rebuilt together so that the modules match the kernel) ------
if ! fresh "$OUT/vmlinuz" || ! fresh "$OUT/initrd.img" || [ "$OUT/vmlinuz" -nt "$OUT/initrd.img" ]; then
  for t in apt-get:apt apt-cache:apt dpkg-deb:dpkg tar:tar cpio:cpio gzip:gzip; do
    need "${t%%:*}" "${t#*:}"
  done
  mkdir -p "$CACHE"

  kpkg=${TENET_GUEST_KERNEL_PKG:-}
  if [ -z "$kpkg" ]; then
    kpkg=$(apt-cache pkgnames linux-image-6.1.0- 2>/dev/null |
           grep -E '^linux-image-6\.1\.0-[0-9]+-amd64$' | sort -V | tail -n1) || true
    [ -n "$kpkg" ] || die "no linux-image-6.1.0-N-amd64 package known to apt (run apt-get update?)"
  fi
  kdeb=$(deb_of "$kpkg")
  bbdeb=$(deb_of busybox-static)

  work=$CACHE/work
  rm -rf "$work"
  mkdir -p "$work/kernel" "$work/bb" "$work/root"

  # Kernel image and just the modules we need (not the whole 400 MB module tree).
  log "extracting $(basename "$kdeb")"
  dpkg-deb --fsys-tarfile "$kdeb" |
    tar -x -C "$work/kernel" --wildcards --no-wildcards-match-slash \
      './boot/vmlinuz-*' './lib/modules/*/modules.builtin' \
      './lib/modules/*/kernel/drivers/virtio/*.ko' \
      './lib/modules/*/kernel/net/core/failover.ko' \
      './lib/modules/*/kernel/drivers/net/net_failover.ko' \
      './lib/modules/*/kernel/drivers/net/virtio_net.ko' \
      './lib/modules/*/kernel/drivers/block/virtio_blk.ko' 2>/dev/null || true
  vmlinuz=$(find "$work/kernel/boot" -name 'vmlinuz-*' | head -n1)
  [ -n "$vmlinuz" ] || die "no vmlinuz in $kdeb"
  kver=${vmlinuz##*/vmlinuz-}
  kmods=$work/kernel/lib/modules/$kver

  # --- initramfs tree ---
  root=$work/root
  mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc/tenet,proc,sys,dev,run,tmp,root}
  mkdir -p "$root/lib/modules/$kver"
  chmod 1777 "$root/tmp"

  dpkg-deb -x "$bbdeb" "$work/bb"
  install -m 755 "$work/bb/bin/busybox" "$root/bin/busybox"
  # One symlink per applet, where busybox itself would install it.
  while read -r applet; do
    [ "$applet" = bin/busybox ] && continue
    mkdir -p "$root/$(dirname "$applet")"
    [ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
  done < <("$root/bin/busybox" --list-full)

  # Modules, in load order; a module built into the kernel is left out.
  : > "$root/etc/tenet/modules"
  for m in "${MODULES[@]}"; do
    f=$(find "$kmods/kernel" -name "$m.ko" | head -n1)
    if [ -n "$f" ]; then
      install -m 644 "$f" "$root/lib/modules/$kver/"
      echo "$m" >> "$root/etc/tenet/modules"
    elif grep -q "/$m.ko\$" "$kmods/modules.builtin" 2>/dev/null; then
      log "module $m is built into $kver"
    else
      die "module $m.ko not found in $kdeb"
    fi
  done

  # ethtool (busybox has none) with the libraries it links, also from Debian packages.
  if [ "$WITH_ETHTOOL" != 0 ]; then
    for p in ethtool libmnl0 libc6; do
      d=$(deb_of "$p")
      dpkg-deb -x "$d" "$work/ethtool"
    done
    e=$work/ethtool
    install -m 755 "$e/sbin/ethtool" "$root/sbin/ethtool"
    mkdir -p "$root/lib/x86_64-linux-gnu" "$root/lib64"
    for lib in ld-linux-x86-64.so.2 libc.so.6 libm.so.6 libmnl.so.0; do
      f=$(find "$e/lib" "$e/usr/lib" -name "$lib" 2>/dev/null | head -n1)
      [ -n "$f" ] || die "$lib not found in the ethtool/libc6/libmnl0 packages"
      cp -L "$f" "$root/lib/x86_64-linux-gnu/$lib"
    done
    ln -s /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$root/lib64/ld-linux-x86-64.so.2"
  fi

  # Guest files: /init, inittab, udhcpc hook, responder.
  cp -R "$OVERLAY/." "$root/"
  chmod 755 "$root/init" "$root/etc/tenet/udhcpc.script" "$root/bin/tenet-respond" "$root/bin/tenet-echo"
  # The kernel opens /dev/console before /init runs (/init also copes without it).
  if [ "$(id -u)" -eq 0 ]; then
    mknod -m 600 "$root/dev/console" c 5 1
    mknod -m 666 "$root/dev/null" c 1 3
  fi

  log "writing vmlinuz and initrd.img"
  cp "$vmlinuz" "$OUT/vmlinuz.tmp"
  (cd "$root" && find . -print0 | LC_ALL=C sort -z |
     cpio --null -o -H newc -R 0:0 --quiet) | gzip -9 -n > "$OUT/initrd.img.tmp"
  echo "$kver" > "$OUT/kernel-release"
  mv -f "$OUT/vmlinuz.tmp" "$OUT/vmlinuz"
  mv -f "$OUT/initrd.img.tmp" "$OUT/initrd.img"   # written after vmlinuz: newer than it
  rm -rf "$work"
fi

# --- disk ----------------------------------------------------------------------------
if [ ! -s "$OUT/disk.qcow2" ]; then
  need qemu-img qemu-utils
  qemu-img create -q -f qcow2 "$OUT/disk.qcow2.tmp" "$DISK_SIZE"
  mv -f "$OUT/disk.qcow2.tmp" "$OUT/disk.qcow2"
fi

summary
