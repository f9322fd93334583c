// Package mail delivers the mail fleetscope sends (DESIGN §5 identity
// rules): verification and password-reset codes, invitations to a system or
// an organization, and the welcome a new owner gets when an installer
// commissions their system.
//
// # Mailers
//
// Every mailer implements Mailer.Send(ctx, Message):
//
//   - Outbox writes the message to the outbox table, which support reads
//     through Outbox.Recent (GET /v1/outbox). It is the default: a fresh
//     installation has no mail server, and a code must still reach its owner
//     (support relays it after checking who asks).
//   - SMTP submits the message to a mail server named by a URL (see NewSMTP
//     for the format and the TLS policy).
//   - Tee records a message with one mailer and delivers it with another, so
//     a deployment with SMTP keeps the outbox for support.
//   - Limited caps the mail one address receives, so that invitations cannot
//     be used to flood someone's mailbox.
//
// A server wires them as
//
//	m := mail.NewMetrics(reg)
//	outbox := mail.NewOutbox(st, mail.OutboxOptions{Logger: log, Metrics: m})
//	var mailer mail.Mailer = outbox
//	if smtpURL != "" {
//		s, err := mail.NewSMTP(smtpURL, mail.SMTPOptions{Logger: log, Metrics: m})
//		...
//		mailer = mail.Tee(s, outbox)
//	}
//	mailer = mail.Limit(mailer, mail.LimitOptions{Metrics: m})
//
// # Secrets
//
// Message bodies carry one-time codes, so no mailer logs a body at Info or
// above (the outbox logs it at Debug, for development), and errors never
// carry a body or the SMTP password.
//
// # Templates
//
// VerificationMail, PasswordResetMail, SystemInvitationMail,
// OrgInvitationMail and WelcomeMail build the messages. They are pure
// functions of their arguments: every value is interpolated as plain text,
// with control characters replaced, so a system or organization name cannot
// add lines or headers to a mail.
package mail
