import { ErrorCode } from '../../common/error-codes';
import { SiloError } from '../../common/errors';

export type SignatureProblem = 'missing_header' | 'empty_body' | 'no_matching_signature' | 'timestamp_outside_tolerance';

const SIGNATURE_MESSAGES: Record<SignatureProblem, string> = {
  missing_header: 'Missing Stripe-Signature header',
  empty_body: 'Empty request body',
  no_matching_signature: 'No signature matches the request body for any configured signing secret',
  timestamp_outside_tolerance: 'Signature timestamp is outside the tolerance window (replayed or delayed request)',
};

export const webhookSignatureInvalid = (reason: SignatureProblem) =>
  new SiloError(ErrorCode.WEBHOOK_SIGNATURE_INVALID, SIGNATURE_MESSAGES[reason], 400, { reason });

export const webhookPayloadInvalid = (problem: string) =>
  new SiloError(ErrorCode.WEBHOOK_PAYLOAD_INVALID, `Signed payload is not a Stripe event: ${problem}`, 400);

export const webhooksNotConfigured = () =>
  new SiloError(ErrorCode.WEBHOOKS_NOT_CONFIGURED, 'Stripe webhooks are not configured on this control plane (STRIPE_WEBHOOK_SECRET is empty)', 503);

export const webhookEventNotFound = (id: string) => new SiloError(ErrorCode.NOT_FOUND, `Webhook event ${id} not found`, 404);
