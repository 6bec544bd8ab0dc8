import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsBoolean, IsEmail, IsIn, IsInt, IsOptional, IsString, IsUUID, Matches, Max, MaxLength, Min, MinLength } from 'class-validator';
import { ApiDateTime } from '../../common/api-docs';
import { Role, ROLES } from '../../common/permissions';
import type { AuditEntry } from '../../tenants/audit-entry.entity';
import { auditActor } from '../../tenants/audit-log.repository';
import { ActorView, AuditCauseView } from '../../tenants/dto/tenant-view.dto';
import type { Operator } from '../operator.entity';
import type { OperatorToken } from '../operator-token.entity';
import { displayPrefix } from '../operator-token-format';

export class CreateOperatorDto {
  @ApiProperty({ example: 'ana@example.com' }) @IsEmail() @MaxLength(254) email!: string;
  @ApiProperty({ example: 'Ana Lima' }) @IsString() @MinLength(1) @MaxLength(200) name!: string;
  @ApiProperty({ enum: ROLES }) @IsIn(ROLES) role!: Role;
}

export class UpdateOperatorDto {
  @ApiPropertyOptional({ enum: ROLES }) @IsOptional() @IsIn(ROLES) role?: Role;
  @ApiPropertyOptional() @IsOptional() @IsString() @MinLength(1) @MaxLength(200) name?: string;
  @ApiPropertyOptional({ description: 'true disables the operator and revokes all their tokens at once; false enables them again (with no tokens)' })
  @IsOptional() @IsBoolean() disabled?: boolean;
}

export class CreateOperatorTokenDto {
  @ApiProperty({ example: 'laptop' }) @IsString() @MinLength(1) @MaxLength(100) name!: string;
  @ApiPropertyOptional({ default: 90, minimum: 1, maximum: 365, description: 'The token stops working this many days from now' })
  @IsOptional() @IsInt() @Min(1) @Max(365) expiresInDays?: number;
}

export class OperatorView {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty() email!: string;
  @ApiProperty() name!: string;
  @ApiProperty({ enum: ROLES }) role!: string;
  @ApiProperty() disabled!: boolean;
  @ApiDateTime({ nullable: true }) disabledAt!: Date | null;
  @ApiDateTime() createdAt!: Date;
  @ApiDateTime() updatedAt!: Date;
}

export class OperatorListView {
  @ApiProperty({ type: [OperatorView] }) items!: OperatorView[];
}

/** A token as listed: prefix and metadata, never the secret or its hash. */
export class OperatorTokenView {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ format: 'uuid' }) operatorId!: string;
  @ApiProperty() name!: string;
  @ApiProperty({ example: 'silo_op_3f9a1c2b7d4e', description: 'Public start of the token, to recognise it' }) prefix!: string;
  @ApiDateTime() createdAt!: Date;
  @ApiDateTime() expiresAt!: Date;
  @ApiDateTime({ nullable: true }) revokedAt!: Date | null;
  @ApiDateTime({ nullable: true, description: 'Last request made with it (recorded at most once a minute)' }) lastUsedAt!: Date | null;
  @ApiProperty({ enum: ['active', 'expired', 'revoked'] }) status!: 'active' | 'expired' | 'revoked';
}

export class IssuedOperatorTokenView extends OperatorTokenView {
  @ApiProperty({ example: 'silo_op_3f9a1c2b7d4e_…', description: 'The full token, for `Authorization: Bearer`. Shown once: Silo keeps only a hash.' }) token!: string;
}

export class OperatorTokenListView {
  @ApiProperty({ type: [OperatorTokenView] }) items!: OperatorTokenView[];
}

export class AuditQuery {
  @ApiPropertyOptional({ default: 100, minimum: 1, maximum: 500 }) @IsOptional() @Type(() => Number) @IsInt() @Min(1) @Max(500) limit?: number;
  @ApiPropertyOptional({ description: 'Page cursor: entries with a smaller id' }) @IsOptional() @Matches(/^[1-9][0-9]{0,18}$/) before?: string;
  @ApiPropertyOptional({ format: 'uuid', description: "Only this operator's actions" }) @IsOptional() @IsUUID() operator?: string;
  @ApiPropertyOptional({ format: 'uuid', description: 'Only this tenant' }) @IsOptional() @IsUUID() tenant?: string;
}

export class AuditEntryView {
  @ApiProperty({ example: '42' }) id!: string;
  @ApiProperty({ format: 'uuid', nullable: true, type: String, description: 'null for operator management' }) tenantId!: string | null;
  @ApiProperty({ example: 'status_changed' }) action!: string;
  @ApiProperty({ nullable: true, type: String }) from!: string | null;
  @ApiProperty({ nullable: true, type: String }) to!: string | null;
  @ApiProperty({ type: AuditCauseView }) cause!: AuditCauseView;
  @ApiProperty({ type: ActorView }) actor!: ActorView;
  @ApiProperty({ type: 'object', additionalProperties: true }) detail!: Record<string, unknown>;
  @ApiDateTime() at!: Date;
}

export class AuditLogView {
  @ApiProperty({ type: [AuditEntryView] }) items!: AuditEntryView[];
}

export const operatorView = (o: Operator): OperatorView => ({
  id: o.id, email: o.email, name: o.name, role: o.role, disabled: o.disabledAt !== null, disabledAt: o.disabledAt, createdAt: o.createdAt, updatedAt: o.updatedAt,
});

export function operatorTokenView(t: OperatorToken, now: Date = new Date()): OperatorTokenView {
  const status = t.revokedAt ? 'revoked' : t.expiresAt <= now ? 'expired' : 'active';
  return { id: t.id, operatorId: t.operatorId, name: t.name, prefix: displayPrefix(t.prefix), createdAt: t.createdAt, expiresAt: t.expiresAt, revokedAt: t.revokedAt, lastUsedAt: t.lastUsedAt, status };
}

export const auditEntryView = (a: AuditEntry): AuditEntryView => ({ id: a.id, tenantId: a.tenantId, action: a.action, from: a.fromStatus, to: a.toStatus, cause: { type: a.causeType, id: a.causeId }, actor: auditActor(a), detail: a.detail, at: a.createdAt });
