#!/usr/bin/perl
# Perl's Mail::IMAPClient (Debian's libmail-imapclient-perl) against mailtk's
# IMAP server, for test/imap-clients.test.ts: logs in and exercises each
# extension mailtk advertises through the library's own methods where it has
# them (folders_hash, search, sort, thread, append_string, copy, set_flag,
# uidexpunge, idle/idle_data/done, getquotaroot) and through tag_and_run for
# the rest (ID, ENABLE, ESEARCH, BINARY, CONDSTORE, MOVE, LIST-EXTENDED,
# LIST-STATUS, SELECT with QRESYNC), then prints one JSON
# object of what the server answered. The test compares it with what the
# messages it delivered make true; this script judges nothing itself.
#
# Usage: imapclient.pl PORT USER PASSWORD DELIVER-COMMAND...
# DELIVER-COMMAND reads a message on stdin and delivers it to USER; it is run
# during IDLE.
use strict;
use warnings;
use JSON::PP;
use Mail::IMAPClient;

my ( $port, $user, $pass, @deliver ) = @ARGV;
@deliver or die "usage: $0 PORT USER PASSWORD DELIVER-COMMAND...\n";
my %out;

my $imap = Mail::IMAPClient->new(
    Server   => '127.0.0.1',
    Port     => $port,
    User     => $user,
    Password => $pass,
    Uid      => 1,
    Timeout  => 30,
) or die "connect/login: $@\n";

# Raw command: the response lines without their CRLF, the tagged one last.
sub raw {
    my ($cmd) = @_;
    my $r = $imap->tag_and_run($cmd) or die "$cmd: " . $imap->LastError . "\n";
    my @lines = map { my $l = $_; $l =~ s/\r?\n\z//; $l } @$r;
    shift @lines if @lines && $lines[0] =~ /^\d+ \Q$cmd\E/;    # the command echoed
    return @lines;
}
sub untagged { my ( $re, @lines ) = @_; return map { /^\* $re(.*)$/ ? ($1) : () } @lines }

$out{capabilities} = [ sort map { uc } $imap->capability ];

# ID (RFC 2971)
my ($id) = untagged( qr/ID /, raw('ID ("name" "Mail::IMAPClient" "version" "' . $Mail::IMAPClient::VERSION . '")') );
$out{id} = { $id =~ /"([^"]*)" "([^"]*)"/g };

# ENABLE (RFC 5161), before any SELECT
my ($enabled) = untagged( qr/ENABLED ?/, raw('ENABLE CONDSTORE QRESYNC') );
$out{enabled} = [ split ' ', $enabled ];

# SPECIAL-USE (RFC 6154): the library's LIST parser, then the selection option
$out{folders} = { map { $_->{name} => [ sort @{ $_->{attrs} } ] } $imap->folders_hash };
$out{specialUse} = [ untagged( qr/LIST /, raw('LIST (SPECIAL-USE) "" *') ) ];

# SORT and THREAD (RFC 5256) and ESEARCH (RFC 4731) on the INBOX the test filled
$imap->select('INBOX') or die "select: " . $imap->LastError . "\n";
my @sel = @{ $imap->Results };
my ($uidvalidity) = map { /\[UIDVALIDITY (\d+)\]/ ? $1 : () } @sel;
my ($modseq0)     = map { /\[HIGHESTMODSEQ (\d+)\]/ ? $1 : () } @sel;
$out{uids} = [ $imap->search('ALL') ];
$out{sortDate}    = [ $imap->sort( 'REVERSE DATE', 'UTF-8', 'ALL' ) ];
$out{sortSubject} = [ $imap->sort( 'SUBJECT',      'UTF-8', 'ALL' ) ];
$out{threadReferences}     = $imap->thread( 'REFERENCES',     'UTF-8', 'ALL' );
$out{threadOrderedSubject} = $imap->thread( 'ORDEREDSUBJECT', 'UTF-8', 'ALL' );
my ($es) = untagged( qr/ESEARCH /, raw('UID SEARCH RETURN (MIN MAX COUNT ALL) SUBJECT apple') );
my @es = split ' ', $es =~ s/^\(TAG "[^"]*"\) UID //r;
$out{esearch} = {@es};

# BINARY (RFC 3516): the decoded bytes of the base64 message, and their size
my $binUid = $out{uids}[-1];
my @bin = raw("UID FETCH $binUid (BINARY.SIZE[1] BINARY.PEEK[1])");
my ($binSize) = join( '', @bin ) =~ /BINARY\.SIZE\[1\] (\d+)/;
my $lit = $imap->_transaction_literals;
$out{binary} = { size => $binSize + 0, hex => unpack( 'H*', $lit // '' ) };

# CONDSTORE (RFC 7162 3.1): a flag change raises the message's MODSEQ;
# CHANGEDSINCE finds only it; UNCHANGEDSINCE refuses to touch it.
my ( $flagUid, $otherUid ) = @{ $out{uids} }[ 1, 2 ];
my @st = raw("UID STORE $flagUid +FLAGS (\\Flagged)");
my ($modseq1) = join( ' ', @st ) =~ /MODSEQ \((\d+)\)/;
my @changed = untagged( qr/\d+ FETCH /, raw("UID FETCH 1:* (FLAGS) (CHANGEDSINCE $modseq0)") );
my @refused = raw("UID STORE $flagUid (UNCHANGEDSINCE $modseq0) +FLAGS (\\Answered)");
my @allowed = raw("UID STORE $otherUid (UNCHANGEDSINCE $modseq0) +FLAGS (\\Seen)");
$out{condstore} = {
    modseqRose => ( $modseq1 // 0 ) > $modseq0 ? JSON::PP::true : JSON::PP::false,
    changedSince => [ map { /UID (\d+)/ ? $1 + 0 : () } @changed ],
    changedFlags => [ map { /FLAGS \(([^)]*)\)/ ? $1 : () } @changed ],
    refused      => $refused[-1],
    allowed      => [ untagged( qr/\d+ FETCH /, @allowed ) ],
};

# UIDPLUS (RFC 4315) and MOVE (RFC 6851): APPENDUID, COPYUID, UID MOVE, UID EXPUNGE
$imap->create('Work/2024') or die "create: " . $imap->LastError . "\n";
$imap->subscribe('Work/2024') or die "subscribe: " . $imap->LastError . "\n";
my $appended = $imap->append_string( 'Work/2024', "From: perl\@v.test\r\nSubject: appended\r\n\r\nby append_string\r\n" );
my $copied = $imap->copy( 'Work/2024', $out{uids}[0] );
my ( $moveUid, $goneUid ) = @{ $out{uids} }[ 3, 0 ];
my @mv = raw("UID MOVE $moveUid Trash");
$imap->set_flag( 'Deleted', $goneUid ) or die "store: " . $imap->LastError . "\n";
my @ex = $imap->uidexpunge($goneUid);
$out{uidplus} = {
    appendUid => ref $appended ? undef : $appended + 0,
    copyUid   => ref $copied   ? undef : $copied + 0,
    move      => [ grep { /COPYUID|VANISHED|EXPUNGE/ } @mv ],
    expunge   => [ map { s/\r?\n\z//r } grep { /^\*/ } @ex ],
    left      => [ $imap->search('ALL') ],
};

# LIST-EXTENDED (RFC 5258) and LIST-STATUS (RFC 5819)
$out{listSubscribed} = [ untagged( qr/(?:LIST|STATUS) /, raw('LIST (SUBSCRIBED) "" "*" RETURN (STATUS (MESSAGES UIDNEXT))') ) ];
$out{listStatus} = [ grep { /^\* / } raw('LIST "" (INBOX Trash "Work/*") RETURN (STATUS (MESSAGES UIDNEXT))') ];

# QRESYNC (RFC 7162 3.2): reopening with what the client knew at the first
# SELECT reports the UIDs that went and the flags that changed since.
raw('UNSELECT');
my @qr = raw("SELECT INBOX (QRESYNC ($uidvalidity $modseq0))");
$out{qresync} = {
    vanished => [ untagged( qr/VANISHED \(EARLIER\) /, @qr ) ],
    fetched  => [ map { s/ MODSEQ \(\d+\)//r } untagged( qr/\d+ FETCH /, @qr ) ],
};

# IDLE (RFC 2177): a delivery made meanwhile is announced with EXISTS
my $tag = $imap->idle or die "idle: " . $imap->LastError . "\n";
open( my $pipe, '|-', @deliver ) or die "@deliver: $!\n";
print $pipe "From: idle\@v.test\nSubject: during IDLE\n\narrived while idling\n";
close $pipe or die "@deliver failed: $?\n";
my @idle;
for ( my $end = time + 20 ; time < $end && !grep { /EXISTS/ } @idle ; ) {
    push @idle, map { s/\r?\n\z//r } @{ $imap->idle_data(1) || [] };
}
$imap->done($tag) or die "done: " . $imap->LastError . "\n";
$out{idle} = [ grep { /EXISTS/ } @idle ];

# QUOTA (RFC 9208), last: the test compares the usage with the mailbox as left
$out{quota} = [ map { s/\r?\n\z//r } grep { /^\* QUOTA/ } @{ $imap->getquotaroot('INBOX') || [] } ];

$imap->logout;
print JSON::PP->new->canonical->encode( \%out ), "\n";
