import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsBoolean, IsDateString, IsIn, IsInt, IsOptional, IsString, Matches, Max, MaxLength, Min, MinLength } from 'class-validator';
import { TenantStatus } from '../tenant-status';

export class CreateTenantDto {
  @ApiProperty({ example: 'Acme Corp' }) @IsString() @MinLength(1) @MaxLength(200) name!: string;
  @ApiPropertyOptional({ example: 'acme', description: 'DNS label, 3-63 chars; must be free and not reserved' })
  @IsOptional() @IsString() @Matches(/^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/, { message: 'slug must be a lowercase DNS label of 3-63 characters' }) slug?: string;
  @ApiPropertyOptional({ example: 'pro' }) @IsOptional() @IsString() @MaxLength(63) tier?: string;
  @ApiPropertyOptional({ example: 'eu-west-1' }) @IsOptional() @IsString() @MaxLength(32) region?: string;
}

export class UpdateTenantDto {
  @ApiPropertyOptional({ example: 'enterprise' }) @IsOptional() @IsString() @MaxLength(63) tier?: string;
  @ApiPropertyOptional({ example: 'db.acme.com', nullable: true, description: 'Custom domain routed to this tenant by the runtime; null removes it' })
  @IsOptional() @IsString() @Matches(/^(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/, { message: 'customDomain must be a lowercase hostname' }) customDomain?: string | null;
}

export class ListTenantsQuery {
  @ApiPropertyOptional({ enum: TenantStatus, isArray: true, description: 'comma-separated' })
  @IsOptional() @IsString() status?: string;
  @ApiPropertyOptional() @IsOptional() @IsString() tier?: string;
  @ApiPropertyOptional({ default: 50, maximum: 500 }) @IsOptional() @Type(() => Number) @IsInt() @Min(1) @Max(500) limit?: number;
  @ApiPropertyOptional({ default: 0 }) @IsOptional() @Type(() => Number) @IsInt() @Min(0) offset?: number;
}

export class SuspendDto {
  @ApiPropertyOptional({ example: 'abuse report #123' }) @IsOptional() @IsString() @MaxLength(500) reason?: string;
}

export class OffboardDto {
  @ApiPropertyOptional({ description: 'Offboard an active tenant immediately' }) @IsOptional() @IsBoolean() force?: boolean;
  @ApiPropertyOptional({ description: 'When to offboard (ISO time); default now' }) @IsOptional() @IsDateString() at?: string;
}

export class HistoryQuery {
  @ApiPropertyOptional({ default: 100 }) @IsOptional() @Type(() => Number) @IsInt() @Min(1) @Max(1000) limit?: number;
  @ApiPropertyOptional({ description: 'Page: entries older than this id' }) @IsOptional() @IsString() @Matches(/^\d+$/) before?: string;
}

export const TENANT_STATUSES = Object.values(TenantStatus) as string[];
export const isTenantStatus = (s: string): s is TenantStatus => TENANT_STATUSES.includes(s);
export { IsIn };
