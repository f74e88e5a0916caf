# A service that is not rollcheck's: no X-Rollcheck-* headers, `/` answers 404, a 1-s
# answer at /slow and its health at /healthz. SIGTERM stops accepting and lets the
# requests in flight finish.
use strict;
use warnings;
use IO::Socket::INET;
my $stop = 0;
$SIG{TERM} = sub { $stop = 1 };
$SIG{CHLD} = 'IGNORE';
my $listen = IO::Socket::INET->new(LocalPort => 8080, Listen => 128, ReuseAddr => 1)
    or die "listen: $!";
while (!$stop) {
    my $c = $listen->accept or next;
    if (fork() == 0) {
        $SIG{TERM} = 'IGNORE';
        my $line = <$c> // '';
        while (my $h = <$c>) { last if $h =~ /^\r?\n$/ }
        my ($path) = $line =~ m{^\S+ (\S+)};
        $path //= '';
        my ($status, $body) = ('404 Not Found', "not here\n");
        ($status, $body) = ('200 OK', "ok\n") if $path eq '/healthz';
        if ($path eq '/slow') { sleep 1; ($status, $body) = ('200 OK', "slow\n") }
        print $c "HTTP/1.1 $status\r\nContent-Type: text/plain\r\nContent-Length: "
            . length($body) . "\r\nConnection: close\r\n\r\n$body";
        close $c;
        exit 0;
    }
    close $c;
}
close $listen;
1 while waitpid(-1, 0) > 0;
