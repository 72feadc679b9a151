"""Differential tests: each script runs twice, natively in a real temporary directory and in a
Sandbox against the model, and everything observable must agree: exit status, stdout, stderr and
the resulting tree (names, types, permission bits, sizes, link targets).

Scripts name their root as $R. Both worlds start from the same tree (TREE below), created on the
real disk with os calls and in the model with the Sandbox's API. Each script runs twice: as this
process's user, and as an unprivileged user (nobody, through setpriv) who owns TREE while the
tree also holds root's 0700, 0711 and 0755 directories and 0600 and 0644 files (OTHERS_TREE),
natively and in the sandbox alike; owners are compared too.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from libcfake import Sandbox

from .conftest import AS_NOBODY

VIRTUAL_ROOT = "/differential"  # not a prefix of any mount (a venv may live under /work)

# path -> contents (str: a file; None: a directory; ("->", target): a symlink), mode
TREE: list[tuple[str, object, int]] = [
    ("a.txt", "alpha\n", 0o644),
    ("b.txt", "bravo\nbravo two\nbravo three\n", 0o600),
    ("exec.sh", "#!/bin/sh\necho run\n", 0o755),
    ("dir", None, 0o755),
    ("dir/c.txt", "charlie\n", 0o644),
    ("dir/sub", None, 0o750),
    ("dir/sub/d.txt", "delta\n", 0o444),
    ("empty", None, 0o700),
    ("link", ("->", "a.txt"), 0o777),
    ("dirlink", ("->", "dir"), 0o777),
    ("broken", ("->", "nowhere"), 0o777),
]

#: Root's, beside TREE, in the run as an unprivileged user (who owns TREE then).
OTHERS_TREE: list[tuple[str, object, int]] = [
    ("root700", None, 0o700),
    ("root700/secret.txt", "secret\n", 0o644),
    ("root700/inner", None, 0o755),
    ("root711", None, 0o711),
    ("root711/f644.txt", "six four four\n", 0o644),
    ("root711/f600.txt", "six hundred\n", 0o600),
    ("root755", None, 0o755),
    ("root755/f644.txt", "six four four\n", 0o644),
    ("root755/f600.txt", "six hundred\n", 0o600),
    ("root755/sub", None, 0o700),
    ("root644.txt", "root's, readable\n", 0o644),
    ("root600.txt", "root's, private\n", 0o600),
]
NOBODY = (65534, 65534)

SCRIPTS: dict[str, str] = {
    # reading
    "cat a file": "cat $R/a.txt",
    "cat two files": "cat $R/a.txt $R/dir/c.txt",
    "cat through a symlink": "cat $R/link",
    "cat through a directory symlink": "cat $R/dirlink/c.txt",
    "cat a broken symlink": "cat $R/broken",
    "cat a directory": "cat $R/dir",
    "cat a missing file": "cat $R/missing",
    "cat below a file": "cat $R/a.txt/x",
    "head -n 2": "head -n 2 $R/b.txt",
    "head -c 3": "head -c 3 $R/b.txt",
    "wc": "wc -l $R/b.txt",
    "grep": "grep -n two $R/b.txt",
    "sort from a file": "sort -r $R/b.txt",
    # test(1)
    "test -e file": "test -e $R/a.txt; echo $?",
    "test -e missing": "test -e $R/missing; echo $?",
    "test -f dir": "test -f $R/dir; echo $?",
    "test -d dir": "test -d $R/dir; echo $?",
    "test -d dirlink": "test -d $R/dirlink; echo $?",
    "test -L link": "test -L $R/link; echo $?",
    "test -L file": "test -L $R/a.txt; echo $?",
    "test -h broken": "test -h $R/broken; echo $?",
    "test -e broken": "test -e $R/broken; echo $?",
    "test -r -w -x": "test -r $R/a.txt && test -w $R/a.txt && test -x $R/exec.sh; echo $?",
    "test -x on a plain file": "test -x $R/a.txt; echo $?",
    "test -s empty": "touch $R/e; test -s $R/e; echo $?",
    # stat(1)
    "stat a file": "stat -c '%n %F %a %s' $R/a.txt",
    "stat a directory": "stat -c '%n %F %a' $R/dir",
    "stat a symlink": "stat -c '%n %F %N' $R/link",
    "stat -L a symlink": "stat -L -c '%n %F %s' $R/link",
    "stat missing": "stat $R/missing",
    "stat several": "stat -c '%n %a' $R/a.txt $R/b.txt $R/dir/sub",
    # writing
    "echo into a new file": "echo hello > $R/new.txt; cat $R/new.txt",
    "append": "echo more >> $R/a.txt; cat $R/a.txt",
    "truncate with >": "echo x > $R/b.txt; cat $R/b.txt",
    "write into a missing directory": "echo x > $R/nodir/f",
    "write into a directory": "echo x > $R/dir",
    "tee": "echo teed | tee $R/t1 $R/t2 > /dev/null; cat $R/t1 $R/t2",
    "tee -a": "echo more | tee -a $R/a.txt; cat $R/a.txt",
    "write a read-only file as its owner": "echo x > $R/dir/sub/d.txt; echo $?",
    # mkdir, rmdir
    "mkdir": "mkdir $R/m && stat -c '%F %a' $R/m",
    "mkdir -m": "mkdir -m 700 $R/m && stat -c '%a' $R/m",
    "mkdir -p": "mkdir -p $R/p/q/r && stat -c '%F' $R/p/q/r",
    "mkdir existing": "mkdir $R/dir",
    "mkdir over a file": "mkdir $R/a.txt",
    "mkdir missing parent": "mkdir $R/x/y",
    "rmdir empty": "rmdir $R/empty",
    "rmdir non-empty": "rmdir $R/dir",
    "rmdir a file": "rmdir $R/a.txt",
    "rmdir missing": "rmdir $R/missing",
    # rm
    "rm a file": "rm $R/a.txt",
    "rm a symlink": "rm $R/link",
    "rm a broken symlink": "rm $R/broken && test ! -h $R/broken; echo $?",
    "rm a directory": "rm $R/dir",
    "rm -r": "rm -r $R/dir",
    "rm -f missing": "rm -f $R/missing; echo $?",
    "rm missing": "rm $R/missing",
    # cp
    "cp a file": "cp $R/a.txt $R/copy.txt && cat $R/copy.txt",
    "cp over a file": "cp $R/a.txt $R/b.txt && cat $R/b.txt",
    "cp into a directory": "cp $R/a.txt $R/dir/ && cat $R/dir/a.txt",
    "cp -p keeps mode": "cp -p $R/b.txt $R/copy && stat -c '%a' $R/copy",
    "cp -r": "cp -r $R/dir $R/dir2 && cat $R/dir2/sub/d.txt",
    "cp a missing file": "cp $R/missing $R/x",
    "cp a directory without -r": "cp $R/dir $R/x",
    # mv
    "mv a file": "mv $R/a.txt $R/moved.txt && cat $R/moved.txt",
    "mv over a file": "mv $R/a.txt $R/b.txt && cat $R/b.txt",
    "mv into a directory": "mv $R/a.txt $R/dir && cat $R/dir/a.txt",
    "mv a directory": "mv $R/dir $R/renamed && cat $R/renamed/c.txt",
    "mv a directory over an empty one": "mv $R/dir $R/empty",
    "mv a directory into itself": "mv $R/dir $R/dir/sub/inside",
    "mv a missing file": "mv $R/missing $R/x",
    # ln
    "ln -s": "ln -s a.txt $R/s && readlink $R/s && cat $R/s",
    "ln -s absolute": "ln -s $R/dir $R/abs && ls $R/abs",
    "ln -s over existing": "ln -s a.txt $R/b.txt",
    "ln -sf": "ln -sf b.txt $R/link && readlink $R/link",
    "ln hard": "ln $R/a.txt $R/hard && stat -c '%h' $R/a.txt $R/hard && cat $R/hard",
    "readlink -f": "readlink -f $R/dirlink",
    "readlink on a file": "readlink $R/a.txt; echo $?",
    "realpath": "realpath $R/dirlink/sub/../c.txt",
    "realpath missing": "realpath $R/missing/x",
    # chmod, touch
    "chmod": "chmod 600 $R/a.txt && stat -c '%a' $R/a.txt",
    "chmod symbolic": "chmod g+w,o-r $R/a.txt && stat -c '%a' $R/a.txt",
    "chmod -R": "chmod -R go-rwx $R/dir && stat -c '%a' $R/dir $R/dir/c.txt $R/dir/sub",
    "chmod missing": "chmod 600 $R/missing",
    "touch new": "touch $R/new && stat -c '%s %F' $R/new",
    "touch -d": "touch -d '2001-02-03 04:05:06 UTC' $R/a.txt && TZ=UTC stat -c '%y' $R/a.txt",
    "touch -m -d keeps content": "touch -m -d @1000000000 $R/a.txt && stat -c '%Y' $R/a.txt && cat $R/a.txt",
    "truncate -s": "truncate -s 3 $R/b.txt && cat $R/b.txt; echo; stat -c '%s' $R/b.txt",
    "truncate -s grows": "truncate -s 10 $R/a.txt && stat -c '%s' $R/a.txt",
    # listing
    "ls": "ls $R",
    "ls -a": "ls -a $R/dir",
    "ls -1F": "ls -1F $R",
    "ls a file": "ls $R/a.txt",
    "ls missing": "ls $R/missing",
    "ls -d": "ls -d $R/dir",
    "ls -R": "ls -R $R/dir",
    "ls -l modes": "ls -l $R | awk 'NR>1 {print $1, $NF}'",
    "find": "find $R | sort",
    "find -type f": "find $R -type f | sort",
    "find -name": "find $R -name '*.txt' | sort",
    "find -maxdepth": "find $R -maxdepth 1 -type d | sort",
    "find -newer": "touch -d @1 $R/old; find $R -maxdepth 1 -newer $R/old -name a.txt",
    "find -empty": "find $R -empty | sort",
    "find -L": "find -L $R/dirlink | sort",
    "du -a": "du -a --apparent-size -b $R/dir | sort -k2",
    # the shell itself
    "glob": "echo $R/*.txt",
    "glob in a subdirectory": "echo $R/dir/*",
    "no match": "echo $R/*.nothing",
    "cd and pwd": "cd $R/dir && pwd && cat c.txt",
    "cd into a symlink": "cd $R/dirlink && pwd -P",
    "cd missing": "cd $R/missing",
    "relative paths": "cd $R && cat a.txt dir/c.txt && mkdir rel && echo x > rel/y && cat rel/y",
    "redirect input": "read line < $R/a.txt && echo $line",
    "here-string to a file": "cat > $R/h <<EOF\nline one\nline two\nEOF\ncat $R/h",
    "noclobber": "set -C; echo x > $R/a.txt",
    "exec a script from the host": "sh $R/exec.sh",
    # symlinks met on the way or at the end
    "touch a broken symlink": "touch $R/broken && ls $R",
    "mkdir on a broken symlink": "mkdir $R/broken",
    "chmod a broken symlink": "chmod 600 $R/broken",
    "chmod through a symlink": "chmod 600 $R/link && stat -c '%a' $R/a.txt $R/link",
    "truncate through a symlink": "truncate -s 2 $R/link && cat $R/a.txt",
    "echo into a directory symlink": "echo x > $R/dirlink",
    "mv a symlink": "mv $R/link $R/l2 && readlink $R/l2 && cat $R/l2",
    "mv a broken symlink": "mv $R/broken $R/b2 && readlink $R/b2",
    "mv -T a file over a directory": "mv -T $R/a.txt $R/empty",
    "mv -T a directory over a file": "mv -T $R/empty $R/a.txt",
    "mv -T a directory over a non-empty one": "mv -T $R/empty $R/dir",
    "mv a file onto itself": "mv $R/a.txt $R/a.txt",
    "ln a hard link to a symlink": "ln $R/link $R/hl && stat -c '%F %h' $R/hl",
    "ln -L a hard link through a symlink": "ln -L $R/link $R/hl && stat -c '%F %h' $R/hl $R/a.txt",
    "rm -r a directory symlink": "rm -r $R/dirlink && ls $R/dir",
    "rmdir a directory symlink": "rmdir $R/dirlink",
    "rm a directory symlink with a slash": "rm $R/dirlink/",
    "cat a file with a slash": "cat $R/a.txt/",
    "mkdir -p through a directory symlink": "mkdir -p $R/dirlink/new/deep && ls $R/dir/new",
    "cp -P a symlink": "cp -P $R/link $R/l3 && readlink $R/l3",
    "a symlink loop": "ln -s loop $R/loop; cat $R/loop; echo x > $R/loop; ls $R/loop/x",
    "dot-dot after a directory symlink": "cat $R/dirlink/../a.txt",
    "touch -h a symlink": "touch -h -d @5 $R/link && stat -c '%Y' $R/link && stat -L -c '%Y' $R/link | grep -c '^5$'",
    # links, open files, tools that write in place
    "a hard link survives unlink": "ln $R/a.txt $R/h && rm $R/a.txt && cat $R/h && stat -c %h $R/h",
    "hard links share an inode": "ln $R/a.txt $R/h && test $(stat -c %i $R/a.txt) = $(stat -c %i $R/h); echo $?",
    "a directory's link count": "mkdir $R/dir/n1 $R/dir/n2 && stat -c %h $R/dir $R/empty",
    "rmdir updates the link count": "mkdir $R/empty/x && rmdir $R/empty/x && stat -c %h $R/empty",
    "link counts asked between changes": "stat -c %h $R/dir; mkdir $R/dir/n; stat -c %h $R/dir; mv $R/dir/n $R/n; stat -c %h $R/dir $R; rm -r $R/dir/sub; stat -c %h $R/dir",
    "mv keeps the inode": "i=$(stat -c %i $R/a.txt); mv $R/a.txt $R/dir/; test $i = $(stat -c %i $R/dir/a.txt); echo $?",
    "read an open file after mv": "exec 3< $R/a.txt; mv $R/a.txt $R/z; cat <&3",
    "read an open file after rm": "exec 3< $R/a.txt; rm $R/a.txt; cat <&3; ls $R",
    "read an open file after it is emptied": "exec 3< $R/b.txt; : > $R/b.txt; cat <&3; echo end",
    "write by one descriptor, read by a path": "exec 3> $R/n; echo hi >&3; cat $R/n",
    "root reads a mode 000 file": "chmod 000 $R/a.txt && cat $R/a.txt",
    "find -perm": "find $R -perm -u+x -type f | sort",
    "find -size": "find $R -size -7c -type f | sort",
    # (block sizes of 4096: dd asks aligned_alloc for a block, which ASan checks in the
    # sanitizer run, and a smaller one is not a multiple of the alignment)
    "dd": "dd if=$R/b.txt of=$R/out bs=4096 iflag=count_bytes count=6 status=none; cat $R/out; echo",
    "dd seek without truncating": "dd if=/dev/zero of=$R/a.txt bs=4096 iflag=count_bytes count=2 oflag=seek_bytes seek=10 conv=notrunc status=none; stat -c %s $R/a.txt",
    "sed -i": "sed -i s/alpha/ALPHA/ $R/a.txt && cat $R/a.txt && stat -c %a $R/a.txt",
    "sort -o onto its input": "sort -o $R/b.txt $R/b.txt && cat $R/b.txt",
    "install -m": "install -m 640 $R/a.txt $R/inst && stat -c %a $R/inst",
    "mktemp -p": "f=$(mktemp -p $R) && test -f $f && stat -c %a $f && rm $f",
    "cp -l": "cp -l $R/a.txt $R/hl && stat -c %h $R/a.txt",
    "touch -r": "touch -r $R/b.txt $R/a.txt && test $(stat -c %Y $R/a.txt) = $(stat -c %Y $R/b.txt); echo $?",
    "setuid and sticky bits": "chmod 4755 $R/exec.sh && chmod 1777 $R/empty && stat -c %A $R/exec.sh $R/empty",
    "umask 077": "umask 077; echo x > $R/u; mkdir $R/ud; stat -c '%a' $R/u $R/ud",
    "umask 0": "umask 0; touch $R/u; stat -c %a $R/u",
    "readlink -e of a broken symlink": "readlink -e $R/broken; echo $?",
    "tar out and back in": "cd $R && tar cf - dir | (mkdir $R/t && cd $R/t && tar xf -) && find $R/t | sort && stat -c '%a %Y' $R/t/dir/sub/d.txt | cut -c1-3",
    # paths: symlink sizes, relative walks, the working directory
    "the size of a symlink": "stat -c '%s %F' $R/link $R/dirlink $R/broken",
    "ls -l of symlinks": "ls -l $R | awk '/^l/ {print $1, $5, $(NF-2), $(NF-1), $NF}'",
    "readlink -f of a chain": "ln -s broken $R/chain && readlink -f $R/chain",
    "realpath -m of a missing path": "realpath -m $R/dirlink/x/../y",
    "cd .. from a directory symlink": "cd $R/dirlink && cd .. && pwd -P && cd $R/dirlink/sub && cd -P .. && pwd",
    "pwd -L in a directory symlink": "cd $R/dirlink && pwd -L",
    "a relative symlink in a subdirectory": "ln -s ../a.txt $R/dir/up && cat $R/dir/up",
    "cat a directory symlink with a slash": "cat $R/dirlink/",
    "a file named with spaces and newlines": 'touch "$R/a b" "$R/c\nd" && ls $R | wc -l',
    "a name of bytes that are not UTF-8": "touch \"$R/$(printf '\\377\\376')\" && ls $R | wc -l && ls $R | od -c | grep -c 377",
    "du -s": "du -s --apparent-size -b $R/dir",
    "stat of the root of the tree and a dot path": "stat -c '%F' $R/. $R/dir/./sub/.. $R//dir",
    # owners, links onto links, trees
    "chown by root": "chown 5:6 $R/a.txt && stat -c '%u %g' $R/a.txt",
    "chown -h a symlink": "chown -h 5:6 $R/link && stat -c '%u %g' $R/link $R/a.txt",
    "chgrp": "chgrp 7 $R/a.txt && stat -c %g $R/a.txt",
    "mv a hard link onto its twin": "ln $R/a.txt $R/h && mv $R/h $R/a.txt; echo $?; stat -c %h $R/a.txt",
    "ln -f over a file": "ln -f $R/a.txt $R/b.txt && stat -c %h $R/a.txt && cat $R/b.txt",
    "blocks of a file": "stat -c '%b %B' $R/b.txt; touch $R/e && stat -c %b $R/e",
    "mkdir -p through a file": "mkdir -p $R/a.txt/x",
    "rm -rf a deep tree": "mkdir -p $R/x/y/z/w && touch $R/x/y/z/w/f && rm -rf $R/x && ls $R",
    "mv onto a directory symlink": "mv $R/a.txt $R/dirlink && ls $R/dir",
    "cp -a keeps modes and times": "cp -a $R/dir $R/d2 && test \"$(stat -c '%a %Y' $R/dir/sub/d.txt)\" = \"$(stat -c '%a %Y' $R/d2/sub/d.txt)\"; echo $?",
    "a deep path": "p=$R; for i in $(seq 1 40); do p=$p/level$i; done; mkdir -p $p && echo x > $p/f && cat $p/f && find $R -name f | wc -l",
    # tools meeting links and existing names
    "truncate through a broken symlink": "truncate -s 5 $R/broken && stat -c %s $R/nowhere",
    "touch -c a missing file": "touch -c $R/missing; echo $?; ls $R",
    "ln -sf over a broken symlink": "ln -sf x $R/broken && readlink $R/broken",
    "mv -n onto an existing file": "mv -n $R/a.txt $R/b.txt; cat $R/b.txt",
    "cp onto a symlink writes through it": "cp $R/b.txt $R/link && cat $R/a.txt && test -L $R/link; echo $?",
    "cp --remove-destination onto a symlink": "cp --remove-destination $R/b.txt $R/link && test -L $R/link; echo $?",
    "cp onto a broken symlink": "cp $R/a.txt $R/broken; echo $?",
    "append through a broken symlink": "echo x >> $R/broken && cat $R/nowhere",
    "find -delete": "find $R/dir -name '*.txt' -delete && find $R/dir | sort",
    "chmod -R a+X": "chmod 600 $R/dir/c.txt && chmod -R a+X $R/dir && stat -c %a $R/dir/c.txt $R/dir/sub",
    # names longer than NAME_MAX (255 bytes)
    "long names": "N=$(printf '%0256d' 0); stat $R/$N; cat $R/$N; mkdir $R/$N; touch $R/$N; ln -s a.txt $R/$N; mv $R/a.txt $R/$N; ls $R",
    "a listed name removed and made a directory": "echo 1 > $R/x && ls $R > /dev/null && rm $R/x && mkdir $R/x && touch $R/x/in && ls $R/x",
    "a listed directory removed and made a file": "mkdir $R/y && ls $R > /dev/null && rmdir $R/y && echo 1 > $R/y && cat $R/y && ls $R | grep -c '^y$'",
    "a listed symlink removed and made a directory": "ln -s a.txt $R/z && ls $R > /dev/null && rm $R/z && mkdir $R/z && ls -d $R/z/ && cd $R/z && pwd",
    "a rename over one name of a hard-linked file": "echo a > $R/h1 && ln $R/h1 $R/h2 && echo t > $R/t && mv $R/t $R/h1 && stat -c %h $R/h1 $R/h2 && cat $R/h1 $R/h2 && rm $R/h2 && ls $R | grep -c '^h'",
    "rename of a symlink to a directory, named with a slash": "mkdir $R/rd && ln -s rd $R/rl && mv $R/rl/ $R/rm; echo $?; mv $R/rl $R/rm2/; echo $?; ls $R | grep '^r'",
    "times to the nanosecond": "touch -d '2001-01-01 00:00:00.123456789' $R/t && stat -c '%y %x' $R/t && python3 -c \"import os; s = os.stat('$R/t'); print(s.st_mtime_ns, s.st_atime_ns)\"",
    "times of a written file to the nanosecond": "echo data > $R/w && touch -d '2001-01-01 00:00:00.987654321' $R/w && stat -c %y $R/w && ls -l --time-style=full-iso $R/w | cut -d' ' -f6-",
    "a 255-byte name": "N=$(printf '%0255d' 0); mkdir $R/$N && ls $R | grep -c 000",
    # extended attributes (setfattr, getfattr: Debian's attr; relative names, as getfattr
    # prints absolute ones without their leading slash)
    "setfattr and getfattr": "cd $R && setfattr -n user.color -v blue a.txt && getfattr -n user.color --only-values a.txt && echo && setfattr -n user.empty dir && getfattr -d a.txt dir",
    "setfattr -x, and of a missing attribute": "cd $R && setfattr -n user.k -v 1 a.txt && setfattr -x user.k a.txt && getfattr -d a.txt; setfattr -x user.k a.txt; getfattr -n user.none a.txt; echo $?",
    "setfattr on a symlink itself, and through it": "cd $R && setfattr -h -n user.k -v 1 link; echo $?; setfattr -n user.k -v 1 link && getfattr -h -d link; getfattr -d link",
    "setfattr in other namespaces": "cd $R && setfattr -n trusted.t -v 1 a.txt; setfattr -n foo.bar -v 1 a.txt; getfattr -n system.posix_acl_access a.txt; getfattr -d -m - a.txt",
    "setfattr on root's files": "cd $R && setfattr -n user.k -v 1 root644.txt root600.txt; getfattr -n user.k root644.txt root600.txt root700/secret.txt; getfattr -d root600.txt; echo $?",
    "cp -a keeps user attributes": "cd $R && setfattr -n user.k -v 'v w' a.txt && setfattr -n user.d -v 1 dir && cp -a a.txt copy.txt && cp -a dir dcopy && getfattr -d copy.txt dcopy && stat -c %a copy.txt dcopy",
    "ls -l of files with and without attributes": "cd $R && setfattr -n user.k -v 1 a.txt && ls -l > /dev/null && ls -l a.txt b.txt dir link | cut -c1-10 && getfattr -n security.selinux a.txt; getfattr -h -n system.posix_acl_access link; getfattr -n system.posix_acl_access missing; echo $?",
    "cp --preserve=xattr, and cp without it": "cd $R && setfattr -n user.k -v 1 b.txt && cp --preserve=xattr b.txt p.txt && cp b.txt q.txt && getfattr -d p.txt q.txt && stat -c %a p.txt",
    # inode numbers: a listing's (readdir's d_ino) are stat's (shim/listing.c)
    "ls -i agrees with stat": 'cd $R && ln a.txt hard && for d in . dir dir/sub empty; do ls -ai $d | while read -r i n; do test "$i" = "$(stat -c %i $d/$n)" && echo "$d/$n same" || echo "$d/$n differs"; done; done',
    "ls -i shows hard links as one inode": "ln $R/a.txt $R/hard && ln $R/a.txt $R/dir/hard2 && ln -s a.txt $R/soft && ls -i $R $R/dir | awk 'NF == 2 {n[$1] = n[$1] \" \" $2} END {for (i in n) print n[i]}' | sort",
    "find -inum finds every hard link": "ln $R/a.txt $R/dir/h && ln $R/a.txt $R/dir/sub/h2 && find $R -inum $(stat -c %i $R/a.txt) | sort",
    "find -printf %i agrees with stat": 'ln $R/b.txt $R/dir/h; find $R -printf \'%i %p\\n\' | while read -r i p; do test "$i" = "$(stat -c %i "$p")" || echo "differs: $p"; done; echo checked',
    "ls -i of files a program wrote": "for n in 1 2 3; do echo $n > $R/w$n; done && ln $R/w1 $R/dir/w1 && ls -i $R $R/dir | awk 'NF == 2 {n[$1] = n[$1] \" \" $2} END {for (i in n) print n[i]}' | sort",
}

#: What every row of PYTHON may use: T(call, *args) prints what the call gives, or the name of
#: its errno.
TRY = (
    "import errno\ndef T(f, *a, **k):\n  try: print(f.__name__, f(*a, **k))\n"
    "  except OSError as e: print(f.__name__, errno.errorcode[e.errno])\n"
)

#: The readdir family, getdents64, getdirentries64 and scandir through libc (ctypes): each entry's d_ino against
#: lstat's st_ino, again after rewinddir and seekdir, and the same numbers from every call.
LIBC_LISTING = """
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
P = ctypes.c_void_p
for name, restype, argtypes in (('opendir', P, [ctypes.c_char_p]), ('readdir', P, [P]),
                                ('readdir64', P, [P]), ('telldir', ctypes.c_long, [P]),
                                ('seekdir', None, [P, ctypes.c_long]), ('rewinddir', None, [P]),
                                ('closedir', ctypes.c_int, [P]),
                                ('readdir_r', ctypes.c_int, [P, P, ctypes.POINTER(P)]),
                                ('getdents64', ctypes.c_ssize_t, [ctypes.c_int, P, ctypes.c_size_t]),
                                ('getdirentries64', ctypes.c_ssize_t, [ctypes.c_int, P, ctypes.c_size_t, P]),
                                ('scandir', ctypes.c_int, [ctypes.c_char_p, ctypes.POINTER(ctypes.POINTER(P)), P, P])):
  getattr(libc, name).restype = restype; getattr(libc, name).argtypes = argtypes
def entry(address): return ctypes.string_at(address + 19).decode(), ctypes.c_uint64.from_address(address).value
def read_all(d, call=libc.readdir):
  out = []
  while (p := call(d)): out.append(entry(p))
  return out
def agree(entries, base): return sorted((n, i == os.lstat(base + '/' + n).st_ino) for n, i in entries)
os.link(R + '/a.txt', R + '/dir/hard')
D = R + '/dir'
d = libc.opendir(D.encode())
first = read_all(d); print('readdir', agree(first, D))
libc.rewinddir(d); print('after rewinddir', read_all(d, libc.readdir64) == first)
libc.rewinddir(d); libc.readdir(d); at = libc.telldir(d); rest = read_all(d)
libc.seekdir(d, at); print('after seekdir', read_all(d) == rest, len(rest) == len(first) - 1)
libc.rewinddir(d); buf = ctypes.create_string_buffer(512); result = P(); by_r = []
while libc.readdir_r(d, ctypes.addressof(buf), ctypes.byref(result)) == 0 and result.value: by_r.append(entry(result.value))
print('readdir_r', by_r == first)
libc.closedir(d)
def records(read):
  fd = os.open(D, os.O_RDONLY | os.O_DIRECTORY); buf = ctypes.create_string_buffer(8192); found = []
  while (n := read(fd, buf)) > 0:
    at = 0
    while at < n:
      found.append(entry(ctypes.addressof(buf) + at)); at += ctypes.c_ushort.from_buffer(buf, at + 16).value
  os.close(fd)
  return sorted(found)
print('getdents64', records(lambda fd, buf: libc.getdents64(fd, ctypes.addressof(buf), len(buf))) == sorted(first))
base = ctypes.c_int64()
print('getdirentries64', records(lambda fd, buf: libc.getdirentries64(fd, ctypes.addressof(buf), len(buf), ctypes.addressof(base))) == sorted(first))
names = ctypes.POINTER(P)(); n = libc.scandir(D.encode(), ctypes.byref(names), None, None)
print('scandir', sorted(entry(names[i]) for i in range(n)) == sorted(first))
"""

PYTHON: dict[str, str] = {
    "os.listdir": "print(sorted(os.listdir(R)))",
    "os.scandir types": "print(sorted((e.name, e.is_dir(), e.is_symlink()) for e in os.scandir(R)))",
    "os.walk": "print([(p.replace(R, '$R'), sorted(d), sorted(f)) for p, d, f in sorted(os.walk(R))])",
    "glob": "import glob; print(sorted(p.replace(R, '$R') for p in glob.glob(R + '/**/*.txt', recursive=True)))",
    "pathlib read_text": "import pathlib; print(pathlib.Path(R, 'a.txt').read_text(), end='')",
    "pathlib write and exists": "import pathlib; p = pathlib.Path(R, 'n'); p.write_text('w'); print(p.exists(), p.stat().st_size)",
    "os.makedirs exist_ok": "os.makedirs(R + '/x/y', exist_ok=True); os.makedirs(R + '/x/y', exist_ok=True); print(os.path.isdir(R + '/x/y'))",
    "os.makedirs existing": "os.makedirs(R + '/dir')",
    "os.rename": "os.rename(R + '/a.txt', R + '/z'); print(os.path.exists(R + '/a.txt'), open(R + '/z').read(), end='')",
    "os.replace over a file": "os.replace(R + '/a.txt', R + '/b.txt'); print(open(R + '/b.txt').read(), end='')",
    "os.rename dir over non-empty": "os.rename(R + '/empty', R + '/dir')",
    "os.rename file over dir": "os.rename(R + '/a.txt', R + '/empty')",
    "os.rename dir over file": "os.rename(R + '/empty', R + '/a.txt')",
    "os.remove a directory": "os.remove(R + '/dir')",
    "os.rmdir": "os.rmdir(R + '/empty'); print(os.path.exists(R + '/empty'))",
    "os.symlink and readlink": "os.symlink('target', R + '/s'); print(os.readlink(R + '/s'), os.path.lexists(R + '/s'), os.path.exists(R + '/s'))",
    "os.link count": "os.link(R + '/a.txt', R + '/h'); print(os.stat(R + '/a.txt').st_nlink)",
    "os.chmod": "os.chmod(R + '/a.txt', 0o604); print(oct(os.stat(R + '/a.txt').st_mode))",
    "os.utime": "os.utime(R + '/a.txt', (1, 2)); s = os.stat(R + '/a.txt'); print(s.st_atime, s.st_mtime)",
    "os.utime ns": "os.utime(R + '/a.txt', ns=(5, 1_500_000_000)); print(os.stat(R + '/a.txt').st_mtime_ns)",
    "os.truncate": "os.truncate(R + '/b.txt', 4); print(open(R + '/b.txt').read())",
    "os.access": "print(os.access(R + '/a.txt', os.R_OK), os.access(R + '/exec.sh', os.X_OK), os.access(R + '/missing', os.F_OK))",
    "os.lstat of a symlink": "import stat; print(stat.S_ISLNK(os.lstat(R + '/link').st_mode), os.lstat(R + '/link').st_size)",
    "os.path.realpath": "print(os.path.realpath(R + '/dirlink/c.txt').replace(R, '$R'))",
    "os.getcwd after chdir": "os.chdir(R + '/dir'); print(os.getcwd().replace(R, '$R'), open('c.txt').read(), end='')",
    "open x mode": "open(R + '/x', 'x').write('1'); open(R + '/x', 'x')",
    "open a directory for writing": "open(R + '/dir', 'w')",
    "O_EXCL|O_CREAT on existing": "os.open(R + '/a.txt', os.O_CREAT | os.O_EXCL | os.O_WRONLY)",
    "O_DIRECTORY on a file": "os.open(R + '/a.txt', os.O_RDONLY | os.O_DIRECTORY)",
    "O_NOFOLLOW on a symlink": "os.open(R + '/link', os.O_RDONLY | os.O_NOFOLLOW)",
    "tempfile.mkstemp": "import tempfile; fd, p = tempfile.mkstemp(dir=R); print(oct(os.stat(p).st_mode & 0o777)); os.unlink(p)",
    "pathlib rglob": "import pathlib; print(sorted(str(p.relative_to(R)) for p in pathlib.Path(R).rglob('*')))",
    "fsync": "f = open(R + '/n', 'w'); f.write('x'); f.flush(); os.fsync(f.fileno()); os.fdatasync(f.fileno()); print('synced')",
    "pread and pwrite": "fd = os.open(R + '/b.txt', os.O_RDWR); os.pwrite(fd, b'XY', 2); print(os.pread(fd, 5, 0))",
    "os.copy_file_range": "a = os.open(R + '/b.txt', os.O_RDONLY); b = os.open(R + '/c', os.O_WRONLY | os.O_CREAT); print(os.copy_file_range(a, b, 100)); print(open(R + '/c').read(), end='')",
    "os.sendfile": "a = os.open(R + '/a.txt', os.O_RDONLY); b = os.open(R + '/c', os.O_WRONLY | os.O_CREAT); print(os.sendfile(b, a, 0, 100))",
    "shutil.copy2 keeps the mtime": "import shutil; shutil.copy2(R + '/a.txt', R + '/c'); print(os.stat(R + '/c').st_mtime == os.stat(R + '/a.txt').st_mtime)",
    "shutil.copytree keeping links": "import shutil; shutil.copytree(R, R + '/../copy', symlinks=True); print(sorted(os.listdir(R + '/../copy')), os.readlink(R + '/../copy/broken'))",
    "shutil.move a directory": "import shutil; shutil.move(R + '/dir', R + '/empty'); print(sorted(os.listdir(R + '/empty')))",
    "flock": "import fcntl; f = open(R + '/a.txt'); fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB); print('locked')",
    "os.listdir of a file": "os.listdir(R + '/a.txt')",
    "samefile for hard links": "os.link(R + '/a.txt', R + '/h'); print(os.path.samefile(R + '/a.txt', R + '/h'))",
    "a directory symlink's inode is the directory's": "print(os.stat(R + '/dirlink').st_ino == os.stat(R + '/dir').st_ino)",
    "a directory's st_nlink": "print(os.stat(R + '/dir').st_nlink, os.stat(R).st_nlink)",
    "O_APPEND from two descriptors": "a = os.open(R + '/a.txt', os.O_WRONLY | os.O_APPEND); b = os.open(R + '/a.txt', os.O_WRONLY | os.O_APPEND); os.write(a, b'1'); os.write(b, b'2'); os.write(a, b'3'); print(open(R + '/a.txt').read())",
    "two writers without O_APPEND": "a = os.open(R + '/a.txt', os.O_WRONLY); b = os.open(R + '/a.txt', os.O_WRONLY); os.write(a, b'11'); os.write(b, b'2'); print(open(R + '/a.txt').read())",
    "rename over a file open for reading": "f = open(R + '/a.txt'); os.rename(R + '/b.txt', R + '/a.txt'); print(f.read(), open(R + '/a.txt').read())",
    "os.truncate an open file": "f = open(R + '/b.txt', 'rb'); os.truncate(R + '/b.txt', 3); print(f.read())",
    "mtime moves on write": "import time; t = os.stat(R + '/a.txt').st_mtime; time.sleep(0.01); open(R + '/a.txt', 'a').write('x'); print(os.stat(R + '/a.txt').st_mtime > t)",
    "ctime moves on chmod": "import time; t = os.stat(R + '/a.txt').st_ctime; time.sleep(0.01); os.chmod(R + '/a.txt', 0o600); print(os.stat(R + '/a.txt').st_ctime > t)",
    "a directory's mtime moves when an entry is added": "import time; t = os.stat(R + '/dir').st_mtime; time.sleep(0.01); open(R + '/dir/new', 'w').close(); print(os.stat(R + '/dir').st_mtime > t)",
    "a directory's mtime moves when an entry is removed": "import time; t = os.stat(R + '/dir').st_mtime; time.sleep(0.01); os.unlink(R + '/dir/c.txt'); print(os.stat(R + '/dir').st_mtime > t)",
    "a directory's mtime moves on rename": "import time; t = os.stat(R + '/dir').st_mtime; time.sleep(0.01); os.rename(R + '/dir/c.txt', R + '/dir/d.txt'); print(os.stat(R + '/dir').st_mtime > t)",
    "os.getcwd after chdir through a symlink": "os.chdir(R + '/dirlink'); print(os.getcwd().replace(R, '$R'))",
    "relative open after chdir": "os.chdir(R + '/dir'); print(open('sub/d.txt').read(), open('../a.txt').read())",
    "os.path.exists with a trailing slash on a file": "print(os.path.exists(R + '/a.txt/'), os.path.exists(R + '/dir/'))",
    "os.readlink of a non-link": "os.readlink(R + '/a.txt')",
    "os.stat of an empty path": "os.stat('')",
    "os.lstat of a symlink with a trailing slash": "print(os.path.islink(R + '/dirlink/'), os.path.islink(R + '/dirlink'))",
    "os.scandir follows nothing": "print(sorted((e.name, e.is_symlink(), e.is_dir(follow_symlinks=False)) for e in os.scandir(R)))",
    "os.access of a broken symlink": "print(os.access(R + '/broken', os.F_OK), os.path.lexists(R + '/broken'))",
    "rename a hard link onto its twin": "os.link(R + '/a.txt', R + '/h'); os.rename(R + '/h', R + '/a.txt'); print(sorted(os.listdir(R)), os.stat(R + '/a.txt').st_nlink)",
    "os.makedirs exist_ok on a file": "os.makedirs(R + '/a.txt', exist_ok=True)",
    "os.removedirs": "os.makedirs(R + '/p/q'); os.removedirs(R + '/p/q'); print(os.path.exists(R + '/p'))",
    "os.listdir through a directory symlink": "print(sorted(os.listdir(R + '/dirlink')))",
    "os.stat through a file": "os.stat(R + '/a.txt/x')",
    "open a directory in Python": "open(R + '/dir')",
    "O_CREAT with O_DIRECTORY": "os.open(R + '/newdir', os.O_CREAT | os.O_DIRECTORY | os.O_RDONLY)",
    "os.link of a directory": "os.link(R + '/dir', R + '/dirhard')",
    "os.symlink onto an existing name": "os.symlink('x', R + '/a.txt')",
    "os.rmdir of a directory symlink": "os.rmdir(R + '/dirlink')",
    "os.unlink of a file with a trailing slash": "os.unlink(R + '/a.txt/')",
    "os.mkdir of a name under a symlink loop": "os.symlink('loop', R + '/loop'); os.mkdir(R + '/loop/x')",
    "O_TRUNC with O_RDONLY": "os.open(R + '/a.txt', os.O_RDONLY | os.O_TRUNC); print(os.path.getsize(R + '/a.txt'))",
    "os.replace a directory over an empty one": "os.mkdir(R + '/e2'); os.replace(R + '/empty', R + '/e2'); print(sorted(os.listdir(R)))",
    "os.rename a file over a directory": "os.rename(R + '/a.txt', R + '/empty')",
    "os.rename a directory over a file": "os.rename(R + '/empty', R + '/a.txt')",
    "os.link to a broken symlink": "os.link(R + '/broken', R + '/h', follow_symlinks=False); print(os.readlink(R + '/h'))",
    "os.truncate through a symlink": "os.truncate(R + '/link', 1); print(open(R + '/a.txt').read())",
    "os.utime of a symlink itself": "os.utime(R + '/link', (5, 5), follow_symlinks=False); print(os.lstat(R + '/link').st_mtime, os.stat(R + '/link').st_mtime != 5)",
    "os.mkdir on a symlink": "os.mkdir(R + '/link')",
    "os.rmdir with a trailing dot": "os.rmdir(R + '/empty/.')",
    "os.rmdir with a trailing dot-dot": "os.rmdir(R + '/dir/sub/..')",
    "os.unlink with a trailing dot": "os.unlink(R + '/empty/.')",
    "os.rename from a trailing dot": "os.rename(R + '/empty/.', R + '/x')",
    "os.rename onto a trailing dot-dot": "os.rename(R + '/a.txt', R + '/dir/..')",
    "os.mkdir with a trailing dot": "os.mkdir(R + '/empty/.')",
    "os.open O_CREAT of a trailing dot": "os.open(R + '/empty/.', os.O_CREAT | os.O_WRONLY)",
    "os.rename into a missing directory": "os.rename(R + '/a.txt', R + '/nodir/a.txt')",
    "os.rename a directory to its own child": "os.rename(R + '/dir', R + '/dir/sub/x')",
    "os.unlink a directory": "os.unlink(R + '/dir')",
    # a new name followed by "/" asks for a directory: only mkdir makes one (filename_create)
    "os.symlink to a name with a slash": "os.symlink('a.txt', R + '/new/')",
    "os.link to a name with a slash": "os.link(R + '/a.txt', R + '/new/')",
    "os.mknod of a missing directory's dot": "os.mknod(R + '/nodir/.')",
    "os.mkfifo of a name with a slash": "os.mkfifo(R + '/new/')",
    "O_CREAT through a symlink to 'target/'": "os.symlink('nowhere/', R + '/dl'); open(R + '/dl', 'a')",
    "O_CREAT read-only of a directory": "os.open(R + '/dir', os.O_RDONLY | os.O_CREAT)",
    # creating through a dangling symlink makes its target; O_EXCL or O_NOFOLLOW refuse
    "write through a broken symlink": "open(R + '/broken', 'w').write('made'); print(open(R + '/nowhere').read(), os.readlink(R + '/broken'))",
    "append through a broken symlink": "open(R + '/broken', 'a').write('x'); print(os.path.getsize(R + '/nowhere'))",
    "O_EXCL through a broken symlink": "os.open(R + '/broken', os.O_CREAT | os.O_EXCL | os.O_WRONLY)",
    "O_NOFOLLOW|O_CREAT on a broken symlink": "os.open(R + '/broken', os.O_CREAT | os.O_NOFOLLOW | os.O_WRONLY)",
    "O_CREAT of a name with a slash": "os.open(R + '/new/', os.O_CREAT | os.O_WRONLY)",
    "write through a symlink to a broken symlink": "os.symlink('broken', R + '/two'); open(R + '/two', 'w').write('x'); print(open(R + '/nowhere').read())",
    "write through a broken symlink into a directory link": "os.symlink('dirlink/new', R + '/deep'); open(R + '/deep', 'w').write('x'); print(sorted(os.listdir(R + '/dir')))",
    "read a directory fd": "fd = os.open(R + '/dir', os.O_RDONLY); os.read(fd, 10)",
    "seek and read": "f = open(R + '/b.txt', 'rb'); f.seek(6); print(f.read(5))",
    "read+write": "f = open(R + '/a.txt', 'r+'); f.write('ALP'); f.seek(0); print(f.read(), end='')",
    "fstat size after write": "f = open(R + '/n', 'w'); f.write('12345'); f.flush(); print(os.fstat(f.fileno()).st_size)",
    "dir_fd opens": "d = os.open(R + '/dir', os.O_RDONLY); print(open(os.open('c.txt', os.O_RDONLY, dir_fd=d)).read(), end='')",
    "stat with dir_fd": "d = os.open(R + '/dir', os.O_RDONLY); print(os.stat('sub', dir_fd=d).st_mode & 0o777)",
    "mkdir with dir_fd": "d = os.open(R + '/dir', os.O_RDONLY); os.mkdir('new', dir_fd=d); print(os.path.isdir(R + '/dir/new'))",
    "unlink with dir_fd": "d = os.open(R + '/dir', os.O_RDONLY); os.unlink('c.txt', dir_fd=d); print(os.listdir(R + '/dir'))",
    "shutil.copytree": "import shutil; shutil.copytree(R + '/dir', R + '/tree'); print(sorted(os.listdir(R + '/tree')))",
    "shutil.rmtree": "import shutil; shutil.rmtree(R + '/dir'); print(os.path.exists(R + '/dir'))",
    "shutil.move across dirs": "import shutil; shutil.move(R + '/a.txt', R + '/empty/'); print(os.listdir(R + '/empty'))",
    "tempfile in a virtual dir": "import tempfile; f = tempfile.NamedTemporaryFile(dir=R, delete=False); f.write(b'x'); f.close(); print(os.path.getsize(f.name)); os.rename(f.name, R + '/kept')",
    "tempfile.TemporaryDirectory": "import tempfile\nwith tempfile.TemporaryDirectory(dir=R) as d:\n  open(d + '/f', 'w').write('x'); print(os.listdir(d))",
    # extended attributes: every call and its errors
    "xattr set, get, list, remove": "f = R + '/a.txt'; os.setxattr(f, 'user.a', b'1\\0two'); os.setxattr(f, 'user.b', b''); os.setxattr(f, 'user.a', b'3', os.XATTR_REPLACE); print(os.getxattr(f, 'user.a'), os.getxattr(f, 'user.b'), sorted(os.listxattr(f))); os.removexattr(f, 'user.a'); print(os.listxattr(f)); os.setxattr(R + '/dir', 'user.d', b'x' * 3000); print(len(os.getxattr(R + '/dirlink', 'user.d')))",
    "xattr errors": "f = R + '/a.txt'; os.setxattr(f, 'user.a', b'1'); T(os.setxattr, f, 'user.a', b'x', os.XATTR_CREATE); T(os.setxattr, f, 'user.n', b'x', os.XATTR_REPLACE); T(os.setxattr, f, 'user.n', b'x', 3); T(os.setxattr, f, 'user.n', b'x', 4); T(os.getxattr, f, 'user.n'); T(os.removexattr, f, 'user.n'); T(os.setxattr, f, 'user.' + 'n' * 251, b''); T(os.setxattr, f, 'user.' + 'n' * 250, b''); T(os.getxattr, f, ''); T(os.setxattr, f, 'user.big', b'x' * 65537); T(os.setxattr, f, 'user.', b''); T(os.getxattr, f, 'user.'); T(os.setxattr, f, 'user', b''); T(os.setxattr, f, 'foo.bar', b''); T(os.getxattr, f, 'system.foo'); T(os.getxattr, f, 'system.posix_acl_access'); T(os.getxattr, R + '/dir', 'system.posix_acl_default'); T(os.getxattr, f, 'security.none'); T(os.getxattr, f, 'trusted.none'); T(os.setxattr, f, 'trusted.t', b'1'); T(os.removexattr, f, 'trusted.none'); T(os.removexattr, f, 'security.none'); print(sorted(os.listxattr(f)))",
    "xattr errors of the path": "T(os.getxattr, R + '/missing', 'user.a'); T(os.listxattr, R + '/missing'); T(os.setxattr, R + '/missing', 'user.a', b''); T(os.removexattr, R + '/missing', 'user.a'); T(os.getxattr, R + '/a.txt/x', 'user.a'); T(os.setxattr, R + '/broken', 'user.a', b''); T(os.listxattr, R + '/broken'); T(os.listxattr, R + '/broken', follow_symlinks=False)",
    "xattr on symlinks": "T(os.setxattr, R + '/link', 'user.a', b'1', follow_symlinks=False); T(os.getxattr, R + '/link', 'user.a', follow_symlinks=False); T(os.removexattr, R + '/link', 'user.a', follow_symlinks=False); T(os.listxattr, R + '/link', follow_symlinks=False); os.setxattr(R + '/link', 'user.a', b'2'); T(os.getxattr, R + '/a.txt', 'user.a'); T(os.listxattr, R + '/link', follow_symlinks=False); T(os.getxattr, R + '/link', 'system.posix_acl_access', follow_symlinks=False); T(os.getxattr, R + '/link', 'security.selinux', follow_symlinks=False); T(os.getxattr, R + '/link', 'system.posix_acl_access')",
    "xattr on root's files": "for p in ('root644.txt', 'root600.txt', 'root700/secret.txt', 'root755', 'root711/f644.txt'):\n  T(os.setxattr, R + '/' + p, 'user.a', b'1'); T(os.getxattr, R + '/' + p, 'user.a'); T(os.listxattr, R + '/' + p); T(os.removexattr, R + '/' + p, 'user.a'); T(os.getxattr, R + '/' + p, 'foo.bar')",
    "xattr on a read-only file of one's own, and a 0700 directory": "T(os.setxattr, R + '/dir/sub/d.txt', 'user.a', b'1'); T(os.getxattr, R + '/dir/sub/d.txt', 'user.a'); T(os.setxattr, R + '/empty', 'user.a', b'1'); T(os.listxattr, R + '/empty')",
    "xattr sizes as libc takes them": "import ctypes; libc = ctypes.CDLL(None, use_errno=True); f = (R + '/a.txt').encode(); os.setxattr(f, 'user.v', b'hello'); os.setxattr(f, 'user.w', b''); b = ctypes.create_string_buffer(64)\nfor n in (0, 1, 4, 5, 64):\n  r = libc.getxattr(f, b'user.v', b if n else None, n); print(n, r, b.raw[:max(r, 0)] if n else b'', os.strerror(ctypes.get_errno()) if r < 0 else '')\nfor n in (0, 6, 7, 14, 64):\n  r = libc.listxattr(f, b if n else None, n); print(n, r, sorted(b.raw[:r].split(b'\\0')) if n and r > 0 else '', os.strerror(ctypes.get_errno()) if r < 0 else '')\nprint(libc.getxattr(f, b'user.w', None, 0), libc.getxattr(f, b'user.w', b, 64))",
    "xattr on descriptors": "fd = os.open(R + '/a.txt', os.O_RDONLY); os.setxattr(fd, 'user.f', b'fd'); print(os.getxattr(fd, 'user.f'), os.listxattr(fd)); os.removexattr(fd, 'user.f'); T(os.getxattr, fd, 'user.f'); T(os.removexattr, fd, 'user.f'); d = os.open(R + '/dir', os.O_RDONLY); os.setxattr(d, 'user.d', b'1'); print(os.listxattr(R + '/dir')); w = os.open(R + '/new', os.O_CREAT | os.O_WRONLY, 0o600); os.setxattr(w, 'user.n', b'2'); print(os.getxattr(R + '/new', 'user.n'))",
    "xattr survives rename and hard link, not copy": "import shutil; os.setxattr(R + '/a.txt', 'user.k', b'v'); os.rename(R + '/a.txt', R + '/moved'); os.link(R + '/moved', R + '/hard'); shutil.copy(R + '/moved', R + '/copied'); shutil.copy2(R + '/moved', R + '/copied2'); print([os.listxattr(R + '/' + n) for n in ('moved', 'hard', 'copied', 'copied2')])",
    "xattr on a FIFO": "os.mkfifo(R + '/fifo'); T(os.setxattr, R + '/fifo', 'user.a', b''); T(os.getxattr, R + '/fifo', 'user.a'); T(os.listxattr, R + '/fifo')",
    # inode numbers: a listing's (readdir's d_ino) are stat's (shim/listing.c)
    "os.scandir inode() is lstat's st_ino": "os.link(R + '/a.txt', R + '/hard'); os.symlink('dir', R + '/soft')\nfor d in (R, R + '/dir', R + '/dir/sub', R + '/empty'):\n  print(sorted((e.name, e.inode() == os.lstat(e.path).st_ino) for e in os.scandir(d)))\nfd = os.open(R + '/dir', os.O_RDONLY); print(sorted((e.name, e.inode() == os.lstat(e.name, dir_fd=fd).st_ino) for e in os.scandir(fd)))\nprint(len({e.inode() for e in os.scandir(R) if e.name in ('a.txt', 'hard')}))",
    "os.scandir of names replaced after opening": "it = os.scandir(R); os.unlink(R + '/a.txt'); open(R + '/a.txt', 'w').close(); os.rename(R + '/b.txt', R + '/exec.sh'); os.link(R + '/dir/c.txt', R + '/dir/d.txt'); os.replace(R + '/dir/d.txt', R + '/link')\nprint(sorted((e.name, e.inode() == os.lstat(e.path).st_ino) for e in it if e.name != 'b.txt'))",
    "os.scandir of files a program wrote": "[open(R + f'/w{i}', 'w').write('x') for i in range(3)]; os.link(R + '/w0', R + '/dir/w0')\nfor d in (R, R + '/dir'): print(sorted((e.name, e.inode() == os.lstat(e.path).st_ino) for e in os.scandir(d)))",
    "os.scandir of a directory one may read, not search": "os.mkdir(R + '/ronly'); open(R + '/ronly/f', 'w').close(); os.mkdir(R + '/ronly/d'); ino = {n: os.lstat(R + '/ronly/' + n).st_ino for n in ('f', 'd')}; os.chmod(R + '/ronly', 0o644)\nprint(sorted((e.name, e.inode() == ino[e.name]) for e in os.scandir(R + '/ronly'))); T(os.listdir, R + '/ronly/d'); os.chmod(R + '/ronly', 0o755)",
    "os.scandir across fork": "import sys; it = os.scandir(R + '/dir'); first = next(it); pid = os.fork()\nif pid == 0:\n  print('child', sorted((e.name, e.inode() == os.lstat(e.path).st_ino) for e in it)); sys.stdout.flush(); os._exit(0)\nos.waitpid(pid, 0); print('parent', sorted((e.name, e.inode() == os.lstat(e.path).st_ino) for e in it))",
    "readdir family through libc": LIBC_LISTING,
    "os.scandir interleaved, and in threads": "import itertools, threading\nagree = lambda e: (e.name, e.inode() == os.lstat(e.path).st_ino)\na, b = os.scandir(R), os.scandir(R + '/dir'); seen = []\nfor x, y in itertools.zip_longest(a, b):\n  os.scandir(R + '/empty').close(); seen += [agree(e) for e in (x, y) if e is not None]\nprint(sorted(seen)); res = {}\ndef scan(d): res[d] = all(agree(e)[1] for _ in range(20) for e in os.scandir(R + '/' + d))\nts = [threading.Thread(target=scan, args=(d,)) for d in ('.', 'dir', 'dir/sub', 'empty')]\n[t.start() for t in ts]; [t.join() for t in ts]; print(sorted(res.items()))",
}


def build_native(root: Path, owner: tuple[int, int] | None = None) -> None:
    """TREE under ``root`` (owned by ``owner`` if given, and then OTHERS_TREE beside it)."""
    root.mkdir(exist_ok=True)
    for path, contents, mode in TREE:
        target = root / path
        if contents is None:
            target.mkdir()
            target.chmod(mode)
        elif isinstance(contents, tuple):
            target.symlink_to(contents[1])
        else:
            target.write_text(str(contents))
            target.chmod(mode)
        if owner is not None:
            os.lchown(target, *owner)
    if owner is None:
        return
    os.chown(root, *owner)
    for path, contents, mode in OTHERS_TREE:
        target = root / path
        if contents is None:
            target.mkdir()
        else:
            target.write_text(str(contents))
        target.chmod(mode)


def build_virtual(sb: Sandbox, owner: tuple[int, int] | None = None) -> None:
    uid, gid = owner or (os.getuid(), os.getgid())
    sb.fs.create_dir(VIRTUAL_ROOT, uid=uid, gid=gid)
    for path, contents, mode in TREE:
        target = f"{VIRTUAL_ROOT}/{path}"
        if contents is None:
            sb.fs.create_dir(target, perm_bits=mode, uid=uid, gid=gid)
        elif isinstance(contents, tuple):
            sb.fs.create_symlink(target, str(contents[1]), uid=uid, gid=gid)
        else:
            sb.fs.create_file(target, contents=str(contents), st_mode=mode, uid=uid, gid=gid)
    if owner is None:
        return
    for path, contents, mode in OTHERS_TREE:
        target = f"{VIRTUAL_ROOT}/{path}"
        if contents is None:
            sb.fs.create_dir(target, perm_bits=mode, uid=0, gid=0)
        else:
            sb.fs.create_file(target, contents=str(contents), st_mode=mode, uid=0, gid=0)


def tree_of_native(root: Path) -> list[tuple[str, ...]]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            entry = describe(os.path.relpath(path, root), os.lstat(path), path, os.readlink)
            found.append(tuple(normalize(field, str(root)) for field in entry))
    return sorted(found)


def tree_of_virtual(sb: Sandbox) -> list[tuple[str, ...]]:
    found = []
    fake = sb.fs.fake
    with sb.fs.lock:
        for dirpath, dirnames, filenames in _walk(fake, VIRTUAL_ROOT):
            for name in dirnames + filenames:
                path = f"{dirpath}/{name}"
                obj = fake.lresolve(path)
                info = sb.fs.stat_of(obj)
                found.append(
                    (
                        os.path.relpath(path, VIRTUAL_ROOT),
                        info.type,
                        oct(info.mode),
                        f"{info.uid}:{info.gid}",
                        str(info.size) if info.type == "regular" else "-",
                        normalize(fake.readlink(path), VIRTUAL_ROOT)
                        if info.type == "symlink"
                        else "-",
                    )
                )
    return sorted(found)


def _walk(fake, top):  # type: ignore[no-untyped-def]
    obj = fake.resolve(top)
    dirs, files = [], []
    for name, child in obj.entries.items():
        (dirs if stat.S_ISDIR(child.st_mode) else files).append(name)
    yield top, dirs, files
    for name in dirs:
        yield from _walk(fake, f"{top}/{name}")


def describe(relative: str, info: os.stat_result, path: str, readlink) -> tuple[str, ...]:  # type: ignore[no-untyped-def]
    kinds = {stat.S_IFREG: "regular", stat.S_IFDIR: "directory", stat.S_IFLNK: "symlink"}
    kind = {**kinds, stat.S_IFIFO: "fifo"}.get(stat.S_IFMT(info.st_mode), "other")
    return (
        relative,
        kind,
        oct(stat.S_IMODE(info.st_mode)),
        f"{info.st_uid}:{info.st_gid}",
        str(info.st_size) if kind == "regular" else "-",
        readlink(path) if kind == "symlink" else "-",
    )


def normalize(text: str, root: str) -> str:
    return text.replace(root, "$R")


@dataclasses.dataclass
class Worlds:
    root: Path  # the native tree
    sb: Sandbox  # the virtual one, at VIRTUAL_ROOT
    user: list[str]  # what runs a program as the user the scripts run as


@pytest.fixture(params=["as this user", "as nobody"])
def worlds(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Worlds]:
    if request.param == "as this user":
        root = tmp_path / "root"
        build_native(root)
        with Sandbox(reply_timeout=20) as sb:
            build_virtual(sb)
            yield Worlds(root, sb, [])
        return
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("dropping to another user needs root and setpriv")
    # a directory everyone may search, unlike tmp_path (and not tmpfs: du counts sizes)
    base = Path(tempfile.mkdtemp())
    base.chmod(0o755)
    try:
        root = base / "root"
        build_native(root, NOBODY)
        with Sandbox(reply_timeout=20) as sb:
            build_virtual(sb, NOBODY)
            yield Worlds(root, sb, AS_NOBODY)
    finally:
        shutil.rmtree(base)


def run_both(worlds: Worlds, argv: list[str]) -> None:
    root, sb = worlds.root, worlds.sb
    argv = [*worlds.user, *argv]
    native = subprocess.run(argv, env={**os.environ, "R": str(root)}, cwd=root.parent,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    virtual = sb.run(argv, env={**os.environ, "R": VIRTUAL_ROOT}, capture_output=True,
                     text=True, timeout=60)  # fmt: skip
    expected = (native.returncode, normalize(native.stdout, str(root)),
                normalize(native.stderr, str(root)))  # fmt: skip
    got = (virtual.returncode, normalize(virtual.stdout, VIRTUAL_ROOT),
           normalize(virtual.stderr, VIRTUAL_ROOT))  # fmt: skip
    assert got == expected
    assert tree_of_virtual(sb) == tree_of_native(root)
    assert not sb.violations, [str(v) for v in sb.violations]


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_shell_script_agrees_with_a_real_directory(worlds: Worlds, script: str) -> None:
    run_both(worlds, ["sh", "-c", SCRIPTS[script]])


@pytest.mark.parametrize("program", sorted(PYTHON))
def test_python_os_calls_agree_with_a_real_directory(worlds: Worlds, program: str) -> None:
    code = f"import os, sys\nR = os.environ['R']\n{TRY}{PYTHON[program]}"
    run_both(worlds, [sys.executable, "-c", code])
