import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsDateString, IsInt, IsOptional, IsString, Max, MaxLength, Min, MinLength } from 'class-validator';
import type { ApiKey } from '../api-key.entity';

export class CreateApiKeyDto {
  @ApiProperty({ example: 'production web app' }) @IsString() @MinLength(1) @MaxLength(100) name!: string;
  @ApiPropertyOptional({ example: '2026-01-01T00:00:00Z', description: 'The key stops working after this time (ISO 8601)' })
  @IsOptional() @IsDateString() expiresAt?: string;
}

export class RotateApiKeyDto {
  @ApiPropertyOptional({ default: 0, maximum: 604800, description: 'Seconds the old key keeps working (0: revoked at once)' })
  @IsOptional() @IsInt() @Min(0) @Max(7 * 24 * 3600) graceSeconds?: number;
}

/** A key as listed: prefix and metadata, never the secret or its hash. */
export class ApiKeyView {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ format: 'uuid' }) tenantId!: string;
  @ApiProperty() name!: string;
  @ApiProperty({ example: 'silo_3f9a1c2b7d4e', description: 'Public start of the key, to recognise it' }) prefix!: string;
  @ApiProperty() createdAt!: Date;
  @ApiPropertyOptional({ nullable: true, type: Date }) expiresAt!: Date | null;
  @ApiPropertyOptional({ nullable: true, type: Date }) revokedAt!: Date | null;
  @ApiProperty({ enum: ['active', 'expired', 'revoked'] }) status!: 'active' | 'expired' | 'revoked';
}

export class IssuedApiKeyView extends ApiKeyView {
  @ApiProperty({ example: 'silo_3f9a1c2b7d4e_…', description: 'The full key. Shown once: store it now, Silo keeps only a hash.' }) key!: string;
  @ApiPropertyOptional({ format: 'uuid', description: 'Rotation only: the key this one replaces' }) replaces?: string;
}

export class ApiKeyListView {
  @ApiProperty({ type: [ApiKeyView] }) items!: ApiKeyView[];
}

export function apiKeyView(k: ApiKey, now: Date = new Date()): ApiKeyView {
  const status = k.revokedAt ? 'revoked' : k.expiresAt && k.expiresAt <= now ? 'expired' : 'active';
  return { id: k.id, tenantId: k.tenantId, name: k.name, prefix: `silo_${k.prefix}`, createdAt: k.createdAt, expiresAt: k.expiresAt, revokedAt: k.revokedAt, status };
}
