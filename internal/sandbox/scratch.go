// This file is the environments' /tmp on disk: an ext4 filesystem of its
// own per environment, in a sparse file of the server's data directory
// behind a loop device, so that /tmp takes disk of EphemeralStorage size
// and not the function's memory, as on AWS (a tmpfs's pages count against
// the memory cgroup: a 128 MB function could not write a 200 MB file).
//
// The server mounts it in no namespace (fsmount) and hands the mount to
// the environment's init, which moves it to /tmp in its own: it is never
// in the host's. The image file is unlinked as soon as the loop device
// holds it, and the loop device frees itself when the mount goes
// (autoclear): when the environment's mount namespace ends, whatever
// ends it, nothing is left.

package sandbox

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// DefaultTmpMB is AWS's default ephemeral storage, the size a spare's /tmp
// is made with. A function with another size gets an environment started
// for it: the filesystem must be mounted before the init starts, and
// growing a mounted ext4 needs CAP_SYS_RESOURCE, which a server in a
// container may not have.
const DefaultTmpMB = 512

// scratchPrefix names the mount points and images in the scratch directory.
const scratchPrefix = "lambdad-tmp-"

// scratchBlock is the filesystem's block size.
const scratchBlock = 4096

// scratch is one environment's /tmp filesystem.
type scratch struct {
	mnt  int      // the mount, of no namespace until the init moves it; -1 once handed on
	img  *os.File // the image (unlinked)
	loop *os.File // its loop device
}

// imageBytes is the image's size for mb usable megabytes: ext4 keeps
// about 1.6% for its inode tables and group descriptors.
func imageBytes(mb int) int64 { return int64(mb)<<20 + int64(mb)<<20/50 }

// findMkfs finds mkfs.ext4 (e2fsprogs) on PATH or where Debian puts it.
func findMkfs() (string, error) {
	if p, err := exec.LookPath("mkfs.ext4"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("mkfs.ext4 is not installed (Debian's package e2fsprogs)")
}

// newScratch makes an ext4 filesystem of mb megabytes in dir and mounts it
// at a new directory there.
func newScratch(mkfs, dir string, mb int) (sc *scratch, err error) {
	img, err := os.CreateTemp(dir, scratchPrefix+"*.img")
	if err != nil {
		return nil, err
	}
	sc = &scratch{img: img, mnt: -1}
	defer func() {
		if err != nil {
			sc.close()
			os.Remove(img.Name())
		}
	}()
	if err := img.Truncate(imageBytes(mb)); err != nil {
		return nil, err
	}
	// No journal (nothing of /tmp outlives its environment), no reserved
	// blocks, the inode tables initialised lazily: about 6 ms.
	out, err := exec.Command(mkfs, "-q", "-F", "-m", "0", "-b", strconv.Itoa(scratchBlock), "-O", "^has_journal",
		"-E", "nodiscard,lazy_itable_init=1", img.Name()).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("mkfs.ext4: %v: %s", err, strings.TrimSpace(string(out)))
	}
	if sc.loop, err = attachLoop(img); err != nil {
		return nil, err
	}
	os.Remove(img.Name()) // the loop device holds it
	// A mount of no namespace (the new mount API): the init moves it
	// into its own at /tmp; nothing of it is ever in the host's.
	fs, err := unix.Fsopen("ext4", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("fsopen ext4: %w", err)
	}
	defer unix.Close(fs)
	if err := unix.FsconfigSetString(fs, "source", sc.loop.Name()); err != nil {
		return nil, fmt.Errorf("fsconfig: %w", err)
	}
	if err := unix.FsconfigCreate(fs); err != nil {
		return nil, fmt.Errorf("mounting %s: %w", sc.loop.Name(), err)
	}
	mfd, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV)
	if err != nil {
		return nil, fmt.Errorf("fsmount: %w", err)
	}
	sc.mnt = mfd
	// Anyone's, as /tmp is: its root is the host's root's, which the
	// environment does not map. Empty, as a new environment's /tmp is
	// on AWS: mkfs's lost+found goes.
	root, err := unix.Openat(mfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	err = unix.Fchmod(root, 0o1777)
	if err == nil {
		if err = unix.Unlinkat(root, "lost+found", unix.AT_REMOVEDIR); errors.Is(err, unix.ENOENT) {
			err = nil
		}
	}
	unix.Close(root)
	if err != nil {
		return nil, err
	}
	return sc, nil
}

// attachLoop gives img a loop device of its own that frees itself when its
// last mount goes, reading and writing the image directly (no second copy
// of /tmp's pages in the host's cache).
func attachLoop(img *os.File) (*os.File, error) {
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer ctl.Close()
	for range 10 {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return nil, fmt.Errorf("finding a free loop device: %w", err)
		}
		dev, err := os.OpenFile("/dev/loop"+strconv.Itoa(n), os.O_RDWR, 0)
		if err != nil {
			return nil, err
		}
		cfg := unix.LoopConfig{Fd: uint32(img.Fd()), Size: scratchBlock}
		cfg.Info.Flags = unix.LO_FLAGS_AUTOCLEAR | unix.LO_FLAGS_DIRECT_IO
		err = unix.IoctlLoopConfigure(int(dev.Fd()), &cfg)
		if errors.Is(err, unix.EBUSY) {
			dev.Close() // another process took it meanwhile
			continue
		}
		if err != nil {
			dev.Close()
			return nil, fmt.Errorf("configuring a loop device: %w", err)
		}
		return dev, nil
	}
	return nil, errors.New("no free loop device")
}

// close lets go of the mount, the image and the loop device (the
// environment's mount keeps what it needs).
func (sc *scratch) close() {
	if sc.mnt >= 0 {
		unix.Close(sc.mnt)
		sc.mnt = -1
	}
	if sc.loop != nil {
		sc.loop.Close()
		sc.loop = nil
	}
	if sc.img != nil {
		sc.img.Close()
		sc.img = nil
	}
}

// cleanScratch removes the images a server that died left in dir (one is
// unlinked as soon as its loop device holds it: only a death in between
// leaves one).
func cleanScratch(dir string) {
	ents, _ := os.ReadDir(dir)
	for _, ent := range ents {
		if strings.HasPrefix(ent.Name(), scratchPrefix) {
			os.Remove(filepath.Join(dir, ent.Name()))
		}
	}
}

// probeScratch makes, mounts nowhere and removes a small scratch
// filesystem in dir: nil if environments can have /tmp on disk.
func probeScratch(mkfs, dir string) error {
	sc, err := newScratch(mkfs, dir, 8)
	if err != nil {
		return err
	}
	sc.close()
	return nil
}
