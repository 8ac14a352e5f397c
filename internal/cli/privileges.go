package cli

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// dropPrivileges gives up root once the capture is open, the way tcpdump -Z
// and Wireshark's dumpcap do: when started with sudo (root, with SUDO_UID
// and SUDO_GID set), it switches to the invoking user: supplementary groups,
// then gid, then uid, in that order, since after setuid the others are no
// longer allowed. An open pcap handle keeps working. HOME and USER follow,
// so files written afterwards land in that user's directories and belong to
// them. Without sudo (root login, or file capabilities) there is nothing to
// drop. Since Go 1.16 these calls apply to every thread of the process.
func dropPrivileges() (dropped bool, err error) {
	if os.Geteuid() != 0 {
		return false, nil
	}
	uidText, gidText := os.Getenv("SUDO_UID"), os.Getenv("SUDO_GID")
	if uidText == "" || gidText == "" {
		return false, nil
	}
	uid, err1 := strconv.Atoi(uidText)
	gid, err2 := strconv.Atoi(gidText)
	if err1 != nil || err2 != nil || uid < 0 || gid < 0 {
		return false, fmt.Errorf("SUDO_UID=%q SUDO_GID=%q are not user and group ids", uidText, gidText)
	}
	if uid == 0 {
		return false, nil // sudo from root: root is who asked
	}
	groups := []int{gid}
	home := ""
	name := uidText
	if u, err := user.LookupId(uidText); err == nil {
		home, name = u.HomeDir, u.Username
		if ids, err := u.GroupIds(); err == nil {
			for _, id := range ids {
				if g, err := strconv.Atoi(id); err == nil && g != gid {
					groups = append(groups, g)
				}
			}
		}
	}
	if err := syscall.Setgroups(groups); err != nil {
		return false, fmt.Errorf("dropping root: setgroups: %v", err)
	}
	if err := syscall.Setgid(gid); err != nil {
		return false, fmt.Errorf("dropping root: setgid %d: %v", gid, err)
	}
	if err := syscall.Setuid(uid); err != nil {
		return false, fmt.Errorf("dropping root: setuid %d: %v", uid, err)
	}
	if os.Geteuid() == 0 || os.Getegid() == 0 && gid != 0 {
		return false, fmt.Errorf("dropping root: still root after setuid(%d)", uid)
	}
	if home != "" {
		os.Setenv("HOME", home)
	}
	os.Setenv("USER", name)
	os.Setenv("LOGNAME", name)
	return true, nil
}
